//! Outbound destination URLs: where Vigil may send an MSP's credentials and data.
//!
//! Every destination an MSP configures (a PSA's API root today; chat and webhook destinations
//! later) goes through one [`DestinationPolicy`], checked three times:
//!
//! 1. when it is saved, [`DestinationPolicy::validate`] refuses it with a plain reason;
//! 2. when a connector builds its client and before each request, it validates the URL again
//!    (stored data may predate a rule, and the HTTP client never resolves IP literals);
//! 3. when a connection is made, [`DestinationResolver`] resolves host names itself and drops
//!    every address that is not public, so a name pointing (or later re-pointed) at 127.0.0.1,
//!    10.0.0.5 or 169.254.169.254 is never connected to; and [`destination_http_client`] never
//!    follows a redirect to another origin.
//!
//! The strict rules (the default, and the only policy in AWS): scheme `https`; no user name or
//! password; no port other than 443; no IP literal that is not public (loopback, private,
//! link-local and the instance metadata address, shared/CGNAT, unspecified, broadcast,
//! documentation, benchmarking, multicast, reserved; IPv6 unique-local, link-local, site-local,
//! discard, IETF-reserved, and IPv4-mapped, 6to4 or NAT64 forms of a non-public IPv4 address);
//! no `localhost`, `*.localhost`, `*.local`, `*.internal` or `*.home.arpa` name, and no name
//! without a dot.
//!
//! The loopback opt-in ([`DestinationPolicy::allow_loopback`]) exists for the local stack, whose
//! simulators listen on 127.0.0.1 over http: it accepts `http` and any port **only** when the
//! host is a loopback literal (127.0.0.0/8, `::1`) or `localhost`; every other URL still follows
//! the strict rules. It is configuration like any other setting: a function reads
//! `DESTINATION_ALLOW_LOOPBACK` through its `Config::from_lookup` (see
//! [`DestinationPolicy::from_lookup`]). The ticket dispatcher hands the policy to the client and
//! provider it builds; the config API hands it to its destinations service, which checks every
//! address before saving it and builds PSA clients (for tests and lookups) with it. Only `infra/local`
//! sets the variable, for every function it runs; `template.yaml` never does (a test below
//! checks).

use crate::settings::{ConfigError, parsed_or};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The environment variable of the loopback opt-in (`true` only in the local stack).
pub const ALLOW_LOOPBACK_VARIABLE: &str = "DESTINATION_ALLOW_LOOPBACK";

/// Redirects a destination client follows at most (and only within the original origin).
pub const MAX_REDIRECTS: usize = 3;

/// Which destination URLs are acceptable. `Default` is strict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Accept `http` and any port for loopback hosts (127.0.0.0/8, `::1`, `localhost`). Local
    /// stack only.
    pub allow_loopback: bool,
}

/// Why a destination URL (or the addresses its host resolves to) is refused. The messages say
/// what is wrong without repeating the URL, which could carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationUrlError {
    #[error("is not a valid URL ({0})")]
    Malformed(String),
    #[error("must use https (not {0})")]
    NotHttps(String),
    #[error("must not contain a user name or password")]
    UserInfo,
    #[error("port {0} is not allowed; use the standard HTTPS port")]
    Port(u16),
    #[error("must name a host")]
    MissingHost,
    #[error("{0} is not a public address; use the service's public host name")]
    NotPublicAddress(IpAddr),
    #[error("{0:?} names this machine or a local network; use the service's public host name")]
    LocalName(String),
    #[error("{0:?} is not a fully qualified host name")]
    NotQualified(String),
    #[error("{0:?} resolves to a private address")]
    ResolvesPrivate(String),
    #[error("{host:?} could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("{host:?} is not a host of this service (expected {expected})")]
    ServiceHost { host: String, expected: String },
}

impl DestinationPolicy {
    /// The strict rules (the default).
    pub const STRICT: Self = Self { allow_loopback: false };
    /// The local stack's opt-in: loopback hosts may use `http` and any port.
    pub const LOOPBACK_ALLOWED: Self = Self { allow_loopback: true };

    /// The policy a function is configured with: strict unless `DESTINATION_ALLOW_LOOPBACK` is
    /// `true`.
    ///
    /// # Errors
    /// When the variable is set to something other than `true` or `false`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { allow_loopback: parsed_or(lookup, ALLOW_LOOPBACK_VARIABLE, false)? })
    }

    /// The URL, parsed, when Vigil may send requests to it.
    ///
    /// # Errors
    /// The first rule the URL breaks.
    pub fn validate(&self, raw: &str) -> Result<Url, DestinationUrlError> {
        let url = Url::parse(raw.trim()).map_err(|e| DestinationUrlError::Malformed(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestinationUrlError::UserInfo);
        }
        let scheme = url.scheme();
        let host = url.host().ok_or(DestinationUrlError::MissingHost)?;
        if self.allow_loopback && is_loopback_host(&host) && matches!(scheme, "http" | "https") {
            return Ok(url);
        }
        if scheme != "https" {
            return Err(DestinationUrlError::NotHttps(scheme.to_owned()));
        }
        // `port()` is `None` for the scheme's default port (443).
        if let Some(port) = url.port() {
            return Err(DestinationUrlError::Port(port));
        }
        match host {
            Host::Ipv4(ip) if !is_public_v4(ip) => return Err(DestinationUrlError::NotPublicAddress(IpAddr::V4(ip))),
            Host::Ipv6(ip) if !is_public_v6(ip) => return Err(DestinationUrlError::NotPublicAddress(IpAddr::V6(ip))),
            Host::Domain(name) => check_name(name)?,
            Host::Ipv4(_) | Host::Ipv6(_) => {}
        }
        Ok(url)
    }

    /// The URL, parsed, when Vigil may send requests to it and its host is one of the service's
    /// (`hosts`: exact names, or suffixes starting with `.`), so a URL stored as a chat webhook
    /// cannot point Vigil anywhere else. A loopback host passes under the loopback opt-in.
    ///
    /// # Errors
    /// The first rule the URL breaks.
    pub fn validate_service(&self, raw: &str, hosts: &[&str]) -> Result<Url, DestinationUrlError> {
        let url = self.validate(raw)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
        let known = hosts.iter().any(|h| if h.starts_with('.') { host.ends_with(h) } else { host == *h });
        if known || (self.allow_loopback && loopback) {
            Ok(url)
        } else {
            Err(DestinationUrlError::ServiceHost { host, expected: hosts.join(", ") })
        }
    }

    /// Whether a connection to `ip` is allowed: public addresses, and loopback ones under the
    /// opt-in.
    #[must_use]
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback && is_loopback(ip))
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// Refuses names of this machine or a local network, and single-label names (resolved through
/// search domains, they reach internal hosts).
fn check_name(name: &str) -> Result<(), DestinationUrlError> {
    let bare = name.trim_end_matches('.').to_ascii_lowercase();
    let local = ["localhost", "local", "internal", "home.arpa"];
    if local.iter().any(|suffix| bare == *suffix || bare.ends_with(&format!(".{suffix}"))) {
        return Err(DestinationUrlError::LocalName(name.to_owned()));
    }
    if !bare.contains('.') {
        return Err(DestinationUrlError::NotQualified(name.to_owned()));
    }
    Ok(())
}

/// Whether `ip` is a public (globally routable unicast) address.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", unspecified
        || a == 10 // private
        || a == 127 // loopback
        || a >= 224 // multicast, reserved, broadcast
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, instance metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF protocol assignments, TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113); // TEST-NET-3
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address that decides.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    // Only global unicast (2000::/3) is public: this leaves out `::`, `::1`, IPv4-compatible
    // `::a.b.c.d`, discard 100::/64, local-use NAT64 64:ff9b:1::/48, unique-local fc00::/7,
    // link-local fe80::/10, site-local fec0::/10 and multicast ff00::/8.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    let ietf = s[0] == 0x2001 && s[1] < 0x0200; // 2001::/23: Teredo, benchmarking, ORCHID
    let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000);
    !(ietf || documentation)
}

#[cfg(feature = "connectors")]
pub use client::{DestinationResolver, destination_http_client};

#[cfg(feature = "connectors")]
mod client {
    use super::{DestinationPolicy, DestinationUrlError, MAX_REDIRECTS};
    use std::net::SocketAddr;

    /// Resolves host names for a destination client and keeps only the addresses the policy
    /// permits, so a refused address is never connected to, whatever the name resolves to now.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct DestinationResolver {
        policy: DestinationPolicy,
    }

    impl DestinationResolver {
        #[must_use]
        pub fn new(policy: DestinationPolicy) -> Self {
            Self { policy }
        }

        /// The permitted addresses of `host` (port 0).
        ///
        /// # Errors
        /// When the name does not resolve, or resolves only to addresses that are not permitted.
        pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, DestinationUrlError> {
            let resolved = tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| DestinationUrlError::Unresolvable { host: host.to_owned(), reason: e.to_string() })?;
            let permitted: Vec<SocketAddr> = resolved.filter(|addr| self.policy.permits(addr.ip())).collect();
            if permitted.is_empty() {
                return Err(DestinationUrlError::ResolvesPrivate(host.to_owned()));
            }
            Ok(permitted)
        }
    }

    impl reqwest::dns::Resolve for DestinationResolver {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let resolver = *self;
            let host = name.as_str().to_owned();
            Box::pin(async move {
                let addrs = resolver.lookup(&host).await?;
                Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
            })
        }
    }

    /// The HTTP client for calls to an MSP-configured destination: [`crate::connectors::http_client`]'s
    /// timeouts and user agent, plus [`DestinationResolver`], no proxy (a proxy would resolve
    /// the name itself, out of the resolver's reach), and redirects followed only within the
    /// original scheme, host and port, at most [`MAX_REDIRECTS`] times. A redirect elsewhere is
    /// not followed: the caller gets the 3xx response.
    ///
    /// Callers still validate each URL with the policy: the resolver never sees IP literals.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn destination_http_client(policy: DestinationPolicy) -> Result<reqwest::Client, reqwest::Error> {
        crate::connectors::http_client_builder()
            .no_proxy()
            .dns_resolver(DestinationResolver::new(policy))
            .redirect(same_origin_redirects())
            .build()
    }

    fn same_origin_redirects() -> reqwest::redirect::Policy {
        reqwest::redirect::Policy::custom(|attempt| {
            // `previous` starts with the original URL.
            let previous = attempt.previous();
            let same_origin = previous.first().is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && previous.len() <= MAX_REDIRECTS { attempt.follow() } else { attempt.stop() }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const STRICT: DestinationPolicy = DestinationPolicy::STRICT;
    const LOOPBACK: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;

    fn refused(policy: DestinationPolicy, url: &str) -> DestinationUrlError {
        match policy.validate(url) {
            Ok(parsed) => panic!("{url} was accepted as {parsed}"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_public_https_api_root_is_accepted() {
        let url = STRICT.validate("https://api-na.myconnectwise.net/v4_6_release/apis/3.0").unwrap();
        assert_eq!(url.host_str(), Some("api-na.myconnectwise.net"));
        assert!(STRICT.validate("https://api.example.com:443/x").is_ok(), "the standard port may be spelled out");
        assert!(STRICT.validate("https://93.184.215.14/x").is_ok(), "a public IPv4 literal");
        assert!(STRICT.validate("https://[2606:4700::1111]/x").is_ok(), "a public IPv6 literal");
        assert!(STRICT.validate("https://[64:ff9b::5db8:d70e]/x").is_ok(), "NAT64 of a public address");
    }

    #[test]
    fn every_reserved_range_ends_where_it_should_and_its_neighbours_are_public() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        for public in [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.0.1",
            "169.255.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "191.254.0.1",
            "192.0.1.1",
            "192.0.3.1",
            "192.88.98.1",
            "192.88.100.1",
            "192.167.0.1",
            "192.169.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "198.51.99.1",
            "198.51.101.1",
            "203.0.112.1",
            "203.0.114.1",
            "223.255.255.255",
            "8.16.0.1",
            "8.0.2.1",
            "8.168.0.1",
            "8.254.0.1",
            "2606:4700::1111",
            "2001:200::1",
            "2001:db9::1",
            "3fff:1000::1",
            "2002:0808:0808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
        for reserved in [
            "0.1.2.3",
            "10.255.255.255",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.1",
            "::",
            "::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001::1",
            "2001:1ff::1",
            "2001:db8::1",
            "3fff::1",
            "2002:0a00:0001::1",
            "64:ff9b::a00:1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(reserved)), "{reserved} is not public");
        }
    }

    #[test]
    fn http_is_refused() {
        assert_eq!(refused(STRICT, "http://api-na.myconnectwise.net/v4_6_release/apis/3.0"), DestinationUrlError::NotHttps("http".into()));
        assert_eq!(refused(STRICT, "ftp://cw.example.com/apis/3.0").to_string(), "must use https (not ftp)");
    }

    #[test]
    fn loopback_addresses_are_refused() {
        for url in [
            "https://127.0.0.1/x",
            "https://127.8.9.10/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
        ] {
            assert!(matches!(refused(STRICT, url), DestinationUrlError::NotPublicAddress(_)), "{url}");
        }
    }

    #[test]
    fn private_addresses_are_refused() {
        for url in [
            "https://10.0.0.5/x",
            "https://172.16.0.1/x",
            "https://172.31.255.255/x",
            "https://192.168.1.1/x",
            "https://100.64.0.1/x",
            "https://[fc00::1]/x",
            "https://[fd12:3456::1]/x",
            "https://[::ffff:10.0.0.5]/x",
            "https://[::ffff:192.168.1.1]/x",
            "https://[64:ff9b::a00:5]/x",
            "https://[2002:c0a8:101::1]/x",
        ] {
            assert!(matches!(refused(STRICT, url), DestinationUrlError::NotPublicAddress(_)), "{url}");
        }
    }

    #[test]
    fn link_local_and_metadata_addresses_are_refused() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.1.1/x",
            "https://[fe80::1]/x",
            "https://[::ffff:169.254.169.254]/x",
            "https://[fd00:ec2::254]/x",
        ] {
            assert!(matches!(refused(STRICT, url), DestinationUrlError::NotPublicAddress(_)), "{url}");
        }
    }

    #[test]
    fn reserved_addresses_are_refused() {
        for url in [
            "https://0.0.0.0/x",
            "https://255.255.255.255/x",
            "https://224.0.0.1/x",
            "https://240.0.0.1/x",
            "https://192.0.2.10/x",
            "https://198.51.100.7/x",
            "https://203.0.113.9/x",
            "https://198.18.0.1/x",
            "https://[::]/x",
            "https://[::a00:5]/x",
            "https://[ff02::1]/x",
            "https://[2001:db8::1]/x",
            "https://[2001::1]/x",
            "https://[fec0::1]/x",
            "https://[100::1]/x",
        ] {
            assert!(matches!(refused(STRICT, url), DestinationUrlError::NotPublicAddress(_)), "{url}");
        }
    }

    #[test]
    fn port_22_and_other_non_standard_ports_are_refused() {
        assert_eq!(refused(STRICT, "https://cw.example.com:22/apis/3.0"), DestinationUrlError::Port(22));
        assert_eq!(refused(STRICT, "https://cw.example.com:22/x").to_string(), "port 22 is not allowed; use the standard HTTPS port");
        assert_eq!(refused(STRICT, "https://cw.example.com:8080/x"), DestinationUrlError::Port(8080));
    }

    #[test]
    fn a_user_name_or_password_in_the_url_is_refused() {
        for url in
            ["http://localhost@evil.example/x", "https://user:pw@host.example/", "https://user@host.example/", "https://:pw@host.example/"]
        {
            assert_eq!(refused(STRICT, url), DestinationUrlError::UserInfo, "{url}");
            assert_eq!(refused(LOOPBACK, url), DestinationUrlError::UserInfo, "{url}");
        }
        assert_eq!(refused(LOOPBACK, "http://user:pw@127.0.0.1:8080/x"), DestinationUrlError::UserInfo);
        assert!(!refused(STRICT, "https://user:hunter2@host.example/").to_string().contains("hunter2"));
    }

    #[test]
    fn local_and_single_label_names_are_refused() {
        for url in [
            "https://localhost/x",
            "https://LOCALHOST./x",
            "https://api.localhost/x",
            "https://printer.local/x",
            "https://db.internal/x",
            "https://nas.home.arpa/x",
        ] {
            assert!(matches!(refused(STRICT, url), DestinationUrlError::LocalName(_)), "{url}");
        }
        assert!(matches!(refused(STRICT, "https://intranet/x"), DestinationUrlError::NotQualified(_)));
        assert!(matches!(refused(STRICT, "https://intranet./x"), DestinationUrlError::NotQualified(_)));
    }

    #[test]
    fn garbage_is_refused_as_malformed() {
        assert!(matches!(refused(STRICT, "not a url"), DestinationUrlError::Malformed(_)));
        assert!(matches!(refused(STRICT, "https://"), DestinationUrlError::Malformed(_)));
    }

    #[test]
    fn the_loopback_opt_in_accepts_http_on_any_port_for_loopback_hosts_only() {
        for url in
            ["http://127.0.0.1:8123/v4_6_release/apis/3.0", "http://localhost:9000/x", "http://[::1]:9000/x", "https://127.0.0.1:1/x"]
        {
            assert!(LOOPBACK.validate(url).is_ok(), "{url}");
            assert!(STRICT.validate(url).is_err(), "{url}");
        }
        assert_eq!(refused(LOOPBACK, "http://cw.example.com/x"), DestinationUrlError::NotHttps("http".into()));
        assert_eq!(refused(LOOPBACK, "https://cw.example.com:22/x"), DestinationUrlError::Port(22));
        assert!(matches!(refused(LOOPBACK, "ftp://127.0.0.1/x"), DestinationUrlError::NotHttps(_)));
    }

    #[test]
    fn the_loopback_opt_in_still_refuses_private_addresses() {
        for url in [
            "http://10.0.0.5:8080/x",
            "https://10.0.0.5/x",
            "https://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data/",
            "https://[fe80::1]/x",
            "https://api.localhost/x",
        ] {
            assert!(LOOPBACK.validate(url).is_err(), "{url}");
        }
        assert!(!LOOPBACK.permits("10.0.0.5".parse().unwrap()));
        assert!(LOOPBACK.permits("127.0.0.1".parse().unwrap()));
        assert!(!STRICT.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_policy_is_strict_unless_the_opt_in_variable_is_true() {
        assert_eq!(DestinationPolicy::default(), STRICT);
        assert_eq!(DestinationPolicy::from_lookup(&|_| None).unwrap(), STRICT);
        assert_eq!(DestinationPolicy::from_lookup(&|name| (name == ALLOW_LOOPBACK_VARIABLE).then(|| "true".into())).unwrap(), LOOPBACK);
        assert_eq!(DestinationPolicy::from_lookup(&|_| Some("false".into())).unwrap(), STRICT);
        assert!(DestinationPolicy::from_lookup(&|_| Some("yes please".into())).is_err());
    }

    #[test]
    fn the_deployed_template_never_opts_into_loopback() {
        let template = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"));
        assert!(!template.contains(ALLOW_LOOPBACK_VARIABLE));
    }

    #[cfg(feature = "connectors")]
    mod connections {
        use super::*;
        use std::io::{BufRead, BufReader, Write};
        use std::sync::{Arc, Mutex};

        #[tokio::test]
        async fn the_strict_resolver_refuses_a_name_that_resolves_only_to_loopback() {
            let error = DestinationResolver::new(STRICT).lookup("localhost").await.unwrap_err();
            assert_eq!(error, DestinationUrlError::ResolvesPrivate("localhost".into()));
            assert_eq!(error.to_string(), "\"localhost\" resolves to a private address");
            let local = DestinationResolver::new(LOOPBACK).lookup("localhost").await.unwrap();
            assert!(local.iter().all(|addr| addr.ip().is_loopback()), "{local:?}");
        }

        #[tokio::test]
        async fn the_strict_client_does_not_connect_to_a_name_that_resolves_to_loopback() {
            let (port, paths) = redirecting_server();
            let client = destination_http_client(STRICT).unwrap();
            let error = client.get(format!("http://localhost:{port}/start")).send().await.unwrap_err();
            assert!(error.is_connect() || error.is_request(), "{error:?}");
            assert!(paths.lock().unwrap().is_empty(), "nothing reached the server");
        }

        #[tokio::test]
        async fn the_client_does_not_follow_a_redirect_to_another_host() {
            let (port, paths) = redirecting_server();
            let client = destination_http_client(LOOPBACK).unwrap();
            let response = client.get(format!("http://127.0.0.1:{port}/start")).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::FOUND, "the redirect is returned, not followed");
            assert_eq!(*paths.lock().unwrap(), ["/start"]);
        }

        #[tokio::test]
        async fn the_client_follows_a_few_redirects_within_the_same_origin() {
            let (port, paths) = redirecting_server();
            let client = destination_http_client(LOOPBACK).unwrap();
            let response = client.get(format!("http://127.0.0.1:{port}/same")).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            let response = client.get(format!("http://127.0.0.1:{port}/loop")).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::FOUND, "a redirect loop stops after {MAX_REDIRECTS} hops");
            assert_eq!(paths.lock().unwrap().iter().filter(|p| *p == "/loop").count(), MAX_REDIRECTS + 1);
        }

        /// A tiny HTTP/1.1 server on 127.0.0.1: `/start` redirects to `localhost` (another host,
        /// same port), `/same` to `/ok` on the same origin, `/loop` to itself; anything else is
        /// 200. Records each request path.
        fn redirecting_server() -> (u16, Arc<Mutex<Vec<String>>>) {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let paths = Arc::new(Mutex::new(Vec::new()));
            let seen = paths.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
                        header.clear();
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(path.clone());
                    let location = match path.as_str() {
                        "/start" => Some(format!("http://localhost:{port}/elsewhere")),
                        "/same" => Some("/ok".to_owned()),
                        "/loop" => Some("/loop".to_owned()),
                        _ => None,
                    };
                    let response = match location {
                        Some(location) => {
                            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        }
                        None => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned(),
                    };
                    let _ = stream.write_all(response.as_bytes());
                }
            });
            (port, paths)
        }
    }
}
