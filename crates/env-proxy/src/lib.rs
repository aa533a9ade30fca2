//! The proxy environment as Go's `net/http.ProxyFromEnvironment` reads it.
//!
//! Every Flux controller sends its outbound HTTP requests (Git, Helm
//! repositories, OCI registries, buckets, artifacts, notifications, the
//! Kubernetes API) through Go transports whose proxy is
//! `ProxyFromEnvironment`, i.e. `golang.org/x/net/http/httpproxy` as
//! vendored in Go's standard library. A drop-in replacement must route the
//! same requests the same way, and the Rust clients do not on their own:
//! reqwest (hyper-util's matcher) also reads `ALL_PROXY`, takes an empty
//! `HTTP_PROXY` over a set `http_proxy`, ignores ports in `NO_PROXY` and
//! proxies requests to `localhost` and loopback addresses, which Go never
//! does; kube reads only `HTTPS_PROXY` and refuses malformed `NO_PROXY`
//! entries. This crate is Go's rules, once, for all of them:
//!
//! - `HTTP_PROXY` for `http://` requests, `HTTPS_PROXY` for `https://`
//!   ones, no fallback between them and no `ALL_PROXY`; the uppercase name
//!   first, the lowercase one when the uppercase is unset *or empty* (the
//!   standard library's order; the newer x/net module prefers lowercase,
//!   but Flux's transports use the standard library's copy).
//! - A value without a scheme (`proxy:3128`) means `http://`.
//! - Requests to `localhost` and to loopback addresses never use a proxy.
//! - `NO_PROXY`: comma-separated `*` (nothing is proxied), IP addresses,
//!   CIDR ranges, domain names (`foo.com` matches it and its subdomains,
//!   `.foo.com` and `*.foo.com` only subdomains), each optionally with
//!   `:port` (then only that port); malformed entries are skipped.
//! - With `REQUEST_METHOD` set (a CGI process, where `HTTP_PROXY` may come
//!   from a request's `Proxy:` header) `HTTP_PROXY` is never used.
//! - The environment is read once per process, as Go caches it.

use std::net::IpAddr;
use std::sync::{LazyLock, Once};

pub use reqwest::Url;

/// The proxy configuration of the environment, parsed by Go's rules.
#[derive(Clone, Debug, Default)]
pub struct EnvProxy {
    http: Option<Url>,
    https: Option<Url>,
    no_proxy: NoProxy,
    cgi: bool,
}

/// Go refuses an `HTTP_PROXY` in a CGI process (`REQUEST_METHOD` set):
/// the value may have come from a request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgiRefusal;

impl std::fmt::Display for CgiRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy",
        )
    }
}

impl std::error::Error for CgiRefusal {}

/// The process's proxy environment, read on first use (Go's
/// `envProxyFunc` is a `sync.Once` too).
pub fn environment() -> &'static EnvProxy {
    static ENVIRONMENT: LazyLock<EnvProxy> = LazyLock::new(EnvProxy::from_env);
    &ENVIRONMENT
}

impl EnvProxy {
    /// `HTTP_PROXY`/`http_proxy`, `HTTPS_PROXY`/`https_proxy`,
    /// `NO_PROXY`/`no_proxy` and `REQUEST_METHOD` of this process.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`EnvProxy::from_env`] reading variables through `get`: Go's
    /// `FromEnvironment`, where an empty value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|name| get(name).filter(|v| !v.is_empty()))
        };
        Self::new(
            any(["HTTP_PROXY", "http_proxy"]).as_deref(),
            any(["HTTPS_PROXY", "https_proxy"]).as_deref(),
            any(["NO_PROXY", "no_proxy"]).as_deref().unwrap_or_default(),
            get("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        )
    }

    /// A configuration from its values (Go's `httpproxy.Config`); an
    /// unparsable proxy is no proxy, as in Go.
    pub fn new(http: Option<&str>, https: Option<&str>, no_proxy: &str, cgi: bool) -> Self {
        EnvProxy {
            http: http.and_then(parse_proxy),
            https: https.and_then(parse_proxy),
            no_proxy: NoProxy::parse(no_proxy),
            cgi,
        }
    }

    /// Whether any proxy is configured at all.
    pub fn is_configured(&self) -> bool {
        self.https.is_some() || (self.http.is_some() && !self.cgi)
    }

    /// The proxy a request to `url` goes through (`None`: connect
    /// directly). Go's `ProxyFunc()(url)`: the proxy URL keeps any
    /// credentials written in the variable.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<Url>, CgiRefusal> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => match &self.http {
                Some(_) if self.cgi => return Err(CgiRefusal),
                http => http.as_ref(),
            },
            _ => None,
        };
        let Some(proxy) = proxy else {
            return Ok(None);
        };
        Ok(self.use_proxy(url).then(|| proxy.clone()))
    }

    /// Go's `useProxy`: false for loopback targets and `NO_PROXY` matches.
    fn use_proxy(&self, url: &Url) -> bool {
        let port = url
            .port_or_known_default()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let target = match url.host() {
            Some(url::Host::Domain(domain)) => {
                let domain = domain.trim().to_ascii_lowercase();
                if domain == "localhost" {
                    return false;
                }
                Target::Domain(domain)
            }
            Some(url::Host::Ipv4(ip)) => Target::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Target::Ip(IpAddr::V6(ip)),
            // Go: an address without a host is always proxied.
            None => return true,
        };
        if let Target::Ip(ip) = &target
            && is_loopback(*ip)
        {
            return false;
        }
        !self.no_proxy.matches(&target, &port)
    }
}

/// What a request is addressed to, as `NO_PROXY` entries match it.
enum Target {
    Ip(IpAddr),
    Domain(String),
}

/// Go's `net.IP.IsLoopback`: 127/8, `::1`, and 127/8 mapped into IPv6.
fn is_loopback(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address (Go's `net.IP`
/// equality and `To4`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Go's `parseProxy`: the value as a URL, or with `http://` in front when
/// it has no scheme or host (`proxy:3128`, `localhost`).
fn parse_proxy(value: &str) -> Option<Url> {
    match Url::parse(value) {
        Ok(url) if url.has_host() && !url.host_str().unwrap_or_default().is_empty() => Some(url),
        other => Url::parse(&format!("http://{value}")).ok().or(other.ok()),
    }
}

/// Go's parsed `NO_PROXY`.
#[derive(Clone, Debug, Default)]
struct NoProxy {
    all: bool,
    ips: Vec<IpRule>,
    domains: Vec<DomainRule>,
}

#[derive(Clone, Debug)]
enum IpRule {
    Cidr(IpAddr, u8),
    Ip(IpAddr, String),
}

/// `host` begins with a dot; `match_host` also matches it without the dot.
#[derive(Clone, Debug)]
struct DomainRule {
    host: String,
    port: String,
    match_host: bool,
}

impl NoProxy {
    /// Go's `config.init`, entry by entry.
    fn parse(value: &str) -> Self {
        let mut rules = NoProxy::default();
        for entry in value.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return NoProxy {
                    all: true,
                    ..NoProxy::default()
                };
            }
            if let Some((ip, bits)) = parse_cidr(&entry) {
                rules.ips.push(IpRule::Cidr(ip, bits));
                continue;
            }
            let (host, port) = match split_host_port(&entry) {
                Some((host, port)) => {
                    if host.is_empty() {
                        continue;
                    }
                    (host.to_string(), port.to_string())
                }
                None => (entry.clone(), String::new()),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                rules.ips.push(IpRule::Ip(canonical(ip), port));
                continue;
            }
            let host = host
                .strip_prefix('*')
                .filter(|h| h.starts_with('.'))
                .unwrap_or(&host);
            let (host, match_host) = match host.strip_prefix('.') {
                Some(_) => (host.to_string(), false),
                None => (format!(".{host}"), true),
            };
            rules.domains.push(DomainRule {
                host: idna_ascii(&host),
                port,
                match_host,
            });
        }
        rules
    }

    fn matches(&self, target: &Target, port: &str) -> bool {
        if self.all {
            return true;
        }
        let port_ok = |rule_port: &str| rule_port.is_empty() || rule_port == port;
        match target {
            Target::Ip(ip) => {
                let ip = canonical(*ip);
                self.ips.iter().any(|rule| match rule {
                    IpRule::Cidr(network, bits) => in_network(ip, *network, *bits),
                    IpRule::Ip(address, rule_port) => *address == ip && port_ok(rule_port),
                })
            }
            Target::Domain(host) => self.domains.iter().any(|rule| {
                (host.ends_with(&rule.host) || (rule.match_host && host == &rule.host[1..]))
                    && port_ok(&rule.port)
            }),
        }
    }
}

/// Go's `net.ParseCIDR`, the network as [`canonical`] addresses (a mapped
/// IPv4 range is the IPv4 range).
fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = entry.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let ip: IpAddr = ip.parse().ok()?;
    match ip {
        IpAddr::V4(_) if bits <= 32 => Some((ip, bits)),
        IpAddr::V6(v6) if bits <= 128 => match v6.to_ipv4_mapped() {
            Some(v4) => Some((IpAddr::V4(v4), bits.saturating_sub(96))),
            None => Some((ip, bits)),
        },
        _ => None,
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// Go's `net.SplitHostPort`: `None` where it returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?;
    let (host, skip_open, skip_close) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']')? + 1;
        if end + 1 != colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[skip_open..].contains('[') || hostport[skip_close..].contains(']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
}

/// A domain suffix (`.example.com`) in IDNA ASCII form, as Go's
/// `idnaASCII`; ASCII input is returned as is.
fn idna_ascii(suffix: &str) -> String {
    if suffix.is_ascii() {
        return suffix.to_string();
    }
    // url's host parser is the IDNA `ToASCII` of the WHATWG URL standard.
    Url::parse(&format!("http://x{suffix}/"))
        .ok()
        .and_then(|url| url.host_str().map(|h| h[1..].to_string()))
        .unwrap_or_else(|| suffix.to_string())
}

/// [`environment`]'s decision for `url` as reqwest takes it: the proxy URL
/// (credentials in it become a `Proxy-Authorization` header), or `None`.
fn reqwest_route(url: &Url) -> Option<Url> {
    match environment().proxy_for(url) {
        Ok(proxy) => proxy.map(dialable),
        Err(refusal) => {
            // reqwest cannot fail a request from a proxy decision: the
            // request goes direct rather than through the untrusted value.
            static WARNED: Once = Once::new();
            WARNED.call_once(|| tracing::warn!("{refusal}"));
            None
        }
    }
}

/// Go dials a proxy of any scheme but `https` and `socks5(h)` as a plain
/// HTTP proxy; hyper-util would drop one of an unknown scheme and go direct.
fn dialable(proxy: Url) -> Url {
    if matches!(proxy.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return proxy;
    }
    let rest = &proxy.as_str()[proxy.scheme().len()..];
    Url::parse(&format!("http{rest}")).unwrap_or(proxy)
}

/// The proxy of every ferroflux HTTP client built with reqwest: Go's
/// decision per request (see the crate documentation). Adding it also
/// turns off reqwest's own reading of the environment.
pub fn reqwest_proxy() -> reqwest::Proxy {
    reqwest::Proxy::custom(reqwest_route)
}

/// `reqwest::Client::builder()` with [`reqwest_proxy`]: what every
/// client without a proxy of its own starts from.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().proxy(reqwest_proxy())
}

/// The environment's proxy for `url`, as `scheme://host:port` without
/// credentials, for messages: a refused connection or a 407 is the proxy's
/// doing and must name it. `None` when `url` is reached directly.
pub fn proxy_address(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let proxy = environment().proxy_for(&url).ok()??;
    Some(address_of(&proxy))
}

/// `message`, followed by ` (through proxy <address>)` when the request to
/// `url` went through the environment's proxy.
pub fn name_proxy(message: String, url: &str) -> String {
    match proxy_address(url) {
        Some(proxy) => format!("{message} (through proxy {proxy})"),
        None => message,
    }
}

/// `scheme://host[:port]` of a proxy URL, without credentials or path.
pub fn address_of(proxy: &Url) -> String {
    let host = match proxy.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match proxy.port() {
        Some(port) => format!("{}://{host}:{port}", proxy.scheme()),
        None => format!("{}://{host}", proxy.scheme()),
    }
}

/// Proxy settings for a client that takes them as strings only and reads
/// the environment itself when given none (oci-client): built for the
/// client's own host so that the decision for it is Go's exactly, with
/// Go's `NO_PROXY` translated for the hosts it may be sent on to (a blob
/// redirect), where the string form cannot say everything Go's can (an
/// entry with a port is left out; `.foo.com` also exempts `foo.com` itself
/// unless that is the client's host).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringProxies {
    /// For `http://` requests.
    pub http: Option<String>,
    /// For `https://` requests.
    pub https: Option<String>,
    /// Hosts reached directly, in reqwest's `NO_PROXY` syntax.
    pub no_proxy: Option<String>,
}

/// Where [`StringProxies`] send requests that must not use a proxy when
/// the environment names none: a proxy only to turn off the client's own
/// reading of the environment, exempting every host.
const NEVER_USED_PROXY: &str = "http://0.0.0.0:9";
const EVERY_HOST: &str = "*,0.0.0.0/0,::/0";

impl EnvProxy {
    /// [`StringProxies`] for a client whose requests go to `target`'s host.
    pub fn string_proxies_for(&self, target: &Url) -> StringProxies {
        let http = self.http.clone().filter(|_| !self.cgi);
        if http.is_none() && self.https.is_none() {
            return StringProxies {
                http: Some(NEVER_USED_PROXY.to_string()),
                https: None,
                no_proxy: Some(EVERY_HOST.to_string()),
            };
        }
        let host = match target.host() {
            Some(url::Host::Domain(domain)) => domain.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => String::new(),
        };
        let mut exempt: Vec<String> = Vec::new();
        if self.no_proxy.all {
            exempt.push(EVERY_HOST.to_string());
        }
        if !host.ends_with(".localhost") {
            exempt.push("localhost".into());
        }
        exempt.extend(["127.0.0.0/8".to_string(), "::1/128".to_string()]);
        for rule in &self.no_proxy.ips {
            match rule {
                IpRule::Cidr(network, bits) => exempt.push(format!("{network}/{bits}")),
                IpRule::Ip(ip, port) if port.is_empty() => exempt.push(ip.to_string()),
                IpRule::Ip(..) => {}
            }
        }
        for rule in &self.no_proxy.domains {
            let bare = &rule.host[1..];
            let subdomains_only_of_target = !rule.match_host && bare == host;
            if rule.port.is_empty() && !subdomains_only_of_target {
                exempt.push(if rule.match_host {
                    bare.to_string()
                } else {
                    rule.host.clone()
                });
            }
        }
        let direct_to_target = matches!(self.proxy_for(target), Ok(None));
        if direct_to_target && !host.is_empty() {
            exempt.push(host);
        }
        let as_string = |proxy: Option<Url>| proxy.map(|p| dialable(p).to_string());
        StringProxies {
            http: as_string(http),
            https: as_string(self.https.clone()),
            no_proxy: Some(exempt.join(",")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn proxy_for(config: &EnvProxy, request: &str) -> String {
        match config.proxy_for(&url(request)) {
            Ok(Some(proxy)) => proxy.as_str().trim_end_matches('/').to_string(),
            Ok(None) => "<nil>".into(),
            Err(refusal) => refusal.to_string(),
        }
    }

    /// Go's `proxyForURLTests` (x/net/http/httpproxy/proxy_test.go).
    #[test]
    fn proxy_for_url_as_go() {
        let http = |v: &str| EnvProxy::new(Some(v), None, "", false);
        let cases: Vec<(EnvProxy, &str, &str)> = vec![
            (
                http("127.0.0.1:8080"),
                "http://example.com",
                "http://127.0.0.1:8080",
            ),
            (
                http("cache.corp.example.com:1234"),
                "http://example.com",
                "http://cache.corp.example.com:1234",
            ),
            (
                http("cache.corp.example.com"),
                "http://example.com",
                "http://cache.corp.example.com",
            ),
            (http("localhost"), "http://example.com", "http://localhost"),
            (
                http("https://cache.corp.example.com"),
                "http://example.com",
                "https://cache.corp.example.com",
            ),
            (
                http("http://127.0.0.1:8080"),
                "http://example.com",
                "http://127.0.0.1:8080",
            ),
            (
                http("https://127.0.0.1:8080"),
                "http://example.com",
                "https://127.0.0.1:8080",
            ),
            (
                http("socks5://127.0.0.1"),
                "http://example.com",
                "socks5://127.0.0.1",
            ),
            (http("foo://host"), "http://example.com", "foo://host"),
            (
                EnvProxy::new(Some("http.proxy.tld"), Some("secure.proxy.tld"), "", false),
                "http://insecure.tld/",
                "http://http.proxy.tld",
            ),
            (
                EnvProxy::new(Some("http.proxy.tld"), Some("secure.proxy.tld"), "", false),
                "https://secure.tld/",
                "http://secure.proxy.tld",
            ),
            (
                EnvProxy::new(
                    Some("http.proxy.tld"),
                    Some("https://secure.proxy.tld"),
                    "",
                    false,
                ),
                "https://secure.tld/",
                "https://secure.proxy.tld",
            ),
            (http("http.proxy.tld"), "https://secure.tld/", "<nil>"),
            (http("http.proxy.tld"), "ftp://insecure.tld/", "<nil>"),
            (
                EnvProxy::new(Some("http://10.1.2.3:8080"), None, "", true),
                "http://example.com",
                "refusing to use HTTP_PROXY value in CGI environment; see golang.org/s/cgihttpproxy",
            ),
            (
                EnvProxy::new(None, Some("https://secure.proxy.tld"), "", true),
                "https://secure.tld/",
                "https://secure.proxy.tld",
            ),
            (EnvProxy::default(), "http://example.com", "<nil>"),
            (
                EnvProxy::new(Some("proxy"), None, "example.com", false),
                "http://example.com/",
                "<nil>",
            ),
            (
                EnvProxy::new(Some("proxy"), None, ".example.com", false),
                "http://example.com/",
                "http://proxy",
            ),
            (
                EnvProxy::new(Some("proxy"), None, "ample.com", false),
                "http://example.com/",
                "http://proxy",
            ),
            (
                EnvProxy::new(Some("proxy"), None, "example.com", false),
                "http://foo.example.com/",
                "<nil>",
            ),
            (
                EnvProxy::new(Some("proxy"), None, ".foo.com", false),
                "http://example.com/",
                "http://proxy",
            ),
            (
                EnvProxy::new(Some("proxy"), None, ".示例.com", false),
                "http://www.示例.com",
                "<nil>",
            ),
            (
                EnvProxy::new(Some("proxy"), None, "xn--fsq092h.com", false),
                "http://www.示例.com",
                "<nil>",
            ),
            (
                EnvProxy::new(Some("proxy"), None, "示例.com", false),
                "http://www.xn--fsq092h.com",
                "<nil>",
            ),
        ];
        for (config, request, want) in cases {
            assert_eq!(proxy_for(&config, request), want, "{config:?} {request}");
        }
    }

    /// Go's `UseProxyTests` against its `noProxy` list, then with `*`.
    #[test]
    fn use_proxy_as_go() {
        let no_proxy = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, \
             192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, \
             [2001:db8::52:0:3]:80, 2002:db8:a::45/64";
        let cases = [
            ("localhost", false),
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("[::1]", false),
            ("[::2]", true),
            ("[::ffff:127.0.0.1]", false),
            ("192.168.1.1", false),
            ("192.168.1.2", true),
            ("192.168.1.3", false),
            ("192.168.1.4", true),
            ("10.0.0.2", false),
            ("[2001:db8::52:0:1]", false),
            ("[2001:db8::52:0:2]", true),
            ("[2001:db8::52:0:3]", false),
            ("[2002:db8:a::123]", false),
            ("[fe80::424b:c8be:1643:a1b6]", true),
            ("barbaz.net", true),
            ("www.barbaz.net", false),
            ("foobar.com", false),
            ("www.foobar.com", false),
            ("foofoobar.com", true),
            ("baz.com", true),
            ("localhost.net", true),
            ("local.localhost", true),
            ("barbarbaz.net", true),
            ("wildcard.io", true),
            ("nested.wildcard.io", false),
            ("awildcard.io", true),
        ];
        let config = EnvProxy::new(Some("proxy"), None, no_proxy, false);
        let everything = EnvProxy::new(Some("proxy"), None, "*", false);
        for (host, proxied) in cases {
            let request = url(&format!("http://{host}:80/"));
            assert_eq!(config.use_proxy(&request), proxied, "{host}");
            assert!(!everything.use_proxy(&request), "{host} with *");
        }
        // A malformed entry is skipped (Go's TestInvalidNoProxy).
        let invalid = EnvProxy::new(Some("proxy"), None, ":1", false);
        assert!(invalid.use_proxy(&url("http://example.com:80/")));
    }

    /// Go's `FromEnvironment`: uppercase first, an empty value is unset,
    /// no `ALL_PROXY`, `REQUEST_METHOD` marks CGI.
    #[test]
    fn reads_the_environment_as_go() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            EnvProxy::from_lookup(move |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        let both = from(&[
            ("HTTP_PROXY", "upper"),
            ("http_proxy", "lower"),
            ("HTTPS_PROXY", ""),
            ("https_proxy", "secure-lower:3128"),
            ("NO_PROXY", "internal.example"),
            ("no_proxy", "other.example"),
        ]);
        assert_eq!(proxy_for(&both, "http://example.com"), "http://upper");
        assert_eq!(
            proxy_for(&both, "https://example.com"),
            "http://secure-lower:3128"
        );
        assert_eq!(proxy_for(&both, "http://internal.example"), "<nil>");
        assert_eq!(proxy_for(&both, "http://other.example"), "http://upper");

        let all_only = from(&[("ALL_PROXY", "http://all:1"), ("all_proxy", "http://all:1")]);
        assert!(!all_only.is_configured());
        assert_eq!(proxy_for(&all_only, "https://example.com"), "<nil>");

        let cgi = from(&[("HTTP_PROXY", "evil:1"), ("REQUEST_METHOD", "GET")]);
        assert!(cgi.proxy_for(&url("http://example.com")).is_err());
        assert!(!cgi.is_configured());
    }

    #[test]
    fn credentials_stay_in_the_proxy_url_but_not_in_messages() {
        let config = EnvProxy::new(
            Some("http://user:p%40ss@proxy.example:3128"),
            None,
            "",
            false,
        );
        let proxy = config
            .proxy_for(&url("http://example.com/"))
            .unwrap()
            .unwrap();
        assert_eq!(proxy.username(), "user");
        assert_eq!(proxy.password(), Some("p%40ss"));
        assert_eq!(address_of(&proxy), "http://proxy.example:3128");
        assert_eq!(address_of(&url("http://[::1]:8080/")), "http://[::1]:8080");
    }

    #[test]
    fn unknown_proxy_schemes_are_dialled_as_http() {
        assert_eq!(
            dialable(url("foo://host:3128")).as_str(),
            "http://host:3128/"
        );
        assert_eq!(
            dialable(url("https://host:3128")).as_str(),
            "https://host:3128/"
        );
    }

    #[test]
    fn go_split_host_port() {
        assert_eq!(split_host_port("1.2.3.4:80"), Some(("1.2.3.4", "80")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("foo.com:"), Some(("foo.com", "")));
        assert_eq!(split_host_port("foo.com"), None);
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("[::1]x:80"), None);
    }

    #[test]
    fn string_proxies_keep_gos_decision_for_the_target() {
        let none = EnvProxy::default().string_proxies_for(&url("https://ghcr.io/"));
        assert_eq!(none.http.as_deref(), Some(NEVER_USED_PROXY));
        assert_eq!(none.no_proxy.as_deref(), Some(EVERY_HOST));

        let config = EnvProxy::new(
            Some("http://u:p@proxy:3128"),
            Some("http://u:p@proxy:3128"),
            "registry.corp:5000, .corp, 10.0.0.0/8, 192.168.0.1:443, svc.example",
            false,
        );
        let proxied = config.string_proxies_for(&url("https://ghcr.io/"));
        assert_eq!(proxied.https.as_deref(), Some("http://u:p@proxy:3128/"));
        assert_eq!(
            proxied.no_proxy.as_deref(),
            Some("localhost,127.0.0.0/8,::1/128,10.0.0.0/8,.corp,svc.example")
        );
        // `.corp` exempts only subdomains in Go: not the host `corp` itself.
        let bare = config.string_proxies_for(&url("https://corp/"));
        assert!(!bare.no_proxy.unwrap_or_default().contains(".corp"));
        // The port-specific entry applies to the target: named exactly.
        let direct = config.string_proxies_for(&url("http://registry.corp:5000/"));
        assert!(
            direct
                .no_proxy
                .unwrap_or_default()
                .ends_with(",registry.corp")
        );
    }
}
