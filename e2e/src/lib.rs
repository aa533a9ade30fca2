//! Test support: the real parts ferroflux is tested against, each installed,
//! built and started on loopback by the project itself.
