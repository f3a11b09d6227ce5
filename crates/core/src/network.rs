//! Per-key network restrictions (pure): the client networks (IPv4/IPv6 CIDRs) and the countries
//! a key may be used from, and the check of a request's client against them.
//!
//! A record's `allowed_networks` and `allowed_countries` are lists; an empty list does not
//! restrict. When a list is set, a request whose client fact is missing or unreadable is refused
//! (deny by default). The facts come from the runtime: the client address from
//! `CF-Connecting-IP`, the country from `request.cf.country`; the worker reads them only for a
//! key that has a restriction ([`crate::gate::Next::ReadClient`]).
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4 address, as a client address and
//! as a network (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). Otherwise IPv4 and IPv6 never match
//! each other: `::/0` is every IPv6 address, `0.0.0.0/0` every IPv4 address. Parsing never
//! panics, whatever the input.

use std::net::IpAddr;

use crate::error::GatewayError;
use crate::record::KeyRecord;

/// Most entries in `allowed_networks`.
pub const MAX_NETWORKS: usize = 100;
/// Most entries in `allowed_countries`.
pub const MAX_COUNTRIES: usize = 100;

/// An address block: the network's first address and how many leading bits are fixed. IPv4
/// (also an IPv4-mapped IPv6 network of prefix ≥ 96) fills the first 4 of the 16 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    octets: [u8; 16],
    /// 4 (IPv4) or 16 (IPv6).
    len: u8,
    prefix: u8,
}

/// Why a CIDR was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// Not an IPv4 or IPv6 address before the `/`.
    Address,
    /// The prefix length is not 0–32 (IPv4) or 0–128 (IPv6) in plain decimal.
    Prefix,
    /// The address has bits set beyond the prefix (`10.0.0.1/8`).
    HostBits,
}

impl CidrError {
    /// What is wrong, for `VALIDATION_FAILED`.
    pub fn problem(self) -> &'static str {
        match self {
            CidrError::Address => "is not an IPv4 or IPv6 address",
            CidrError::Prefix => "has a prefix length outside 0-32 (IPv4) or 0-128 (IPv6)",
            CidrError::HostBits => "has address bits set beyond its prefix length (write the network's first address)",
        }
    }
}

/// An address as matched: an IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// An address's octets, padded to 16, and how many there are. Bytes rather than `u32`/`u128`
/// arithmetic: one code path for both families, and small in the wasm.
fn octets(address: IpAddr) -> ([u8; 16], u8) {
    match address {
        IpAddr::V4(v4) => {
            let mut octets = [0; 16];
            octets[..4].copy_from_slice(&v4.octets());
            (octets, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    }
}

/// The bits of octet `index` that a `prefix`-bit network fixes.
fn fixed_bits(prefix: u8, index: usize) -> u8 {
    let fixed = usize::from(prefix).saturating_sub(index * 8).min(8) as u32;
    !0xffu8.checked_shr(fixed).unwrap_or(0)
}

/// The client address of a `CF-Connecting-IP` value (surrounding spaces ignored), or `None`.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok().map(canonical)
}

/// Parses `address/prefix`, or a bare address (one host: /32 or /128).
pub fn parse_cidr(text: &str) -> Result<Network, CidrError> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| CidrError::Address)?;
    let prefix = match prefix {
        None => None,
        // Plain decimal only: no sign, no leading zero, at most three digits.
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0')) => {
            // Three digits at most: no overflow. By hand, not `str::parse`: smaller in the wasm.
            Some(p.bytes().fold(0u16, |n, b| n * 10 + u16::from(b - b'0')))
        }
        Some(_) => return Err(CidrError::Prefix),
    };
    // A mapped IPv6 network that lies within ::ffff:0:0/96 is the IPv4 network.
    let (address, prefix) = match (address, canonical(address), prefix) {
        (IpAddr::V6(_), IpAddr::V4(v4), Some(prefix)) if prefix >= 96 => (IpAddr::V4(v4), Some(prefix - 96)),
        (IpAddr::V6(_), IpAddr::V4(v4), None) => (IpAddr::V4(v4), None),
        (written, _, prefix) => (written, prefix),
    };
    let (octets, len) = octets(address);
    let prefix = prefix.unwrap_or(u16::from(len) * 8);
    if prefix > u16::from(len) * 8 {
        return Err(CidrError::Prefix);
    }
    let prefix = prefix as u8;
    if octets.iter().enumerate().any(|(index, octet)| octet & !fixed_bits(prefix, index) != 0) {
        return Err(CidrError::HostBits);
    }
    Ok(Network { octets, len, prefix })
}

impl Network {
    /// Whether `address` (as [`parse_address`] gives it) is in this network.
    pub fn contains(self, address: IpAddr) -> bool {
        let (octets, len) = octets(canonical(address));
        len == self.len && (0..16).all(|index| (octets[index] ^ self.octets[index]) & fixed_bits(self.prefix, index) == 0)
    }
}

/// Whether `code` is a country as `request.cf.country` spells it: two uppercase ASCII letters
/// (ISO 3166-1 alpha-2; not checked against the ISO list), or Cloudflare's `T1` (Tor).
pub fn is_country(code: &str) -> bool {
    code == "T1" || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
}

/// What the runtime says about the request's client, read only for a restricted key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    /// The `CF-Connecting-IP` value.
    pub address: Option<String>,
    /// `request.cf.country`.
    pub country: Option<String>,
}

/// Whether the record restricts where it may be used from (then [`admit`] needs the client).
pub fn restricts(record: &KeyRecord) -> bool {
    !record.allowed_networks.is_empty() || !record.allowed_countries.is_empty()
}

/// Checks the client against the record's networks, then its countries.
pub fn admit(record: &KeyRecord, client: &ClientFacts) -> Result<(), GatewayError> {
    if !record.allowed_networks.is_empty() {
        let address = client.address.as_deref().and_then(parse_address);
        // A stored network that does not parse matches nothing (decoding refuses such records
        // anyway): never an admission by accident.
        let inside = |address: IpAddr| record.allowed_networks.iter().any(|n| parse_cidr(n).is_ok_and(|n| n.contains(address)));
        if !address.is_some_and(inside) {
            return Err(GatewayError::NetworkNotAllowed);
        }
    }
    if !record.allowed_countries.is_empty() {
        let listed = client.country.as_deref().is_some_and(|c| record.allowed_countries.iter().any(|a| a.eq_ignore_ascii_case(c)));
        if !listed {
            return Err(GatewayError::CountryNotAllowed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_table() {
        use CidrError::*;
        let v4 = |bits: u32, prefix| {
            let mut octets = [0; 16];
            octets[..4].copy_from_slice(&bits.to_be_bytes());
            Ok(Network { octets, len: 4, prefix })
        };
        let v6 = |bits: u128, prefix| Ok(Network { octets: bits.to_be_bytes(), len: 16, prefix });
        let rows: Vec<(&str, Result<Network, CidrError>)> = vec![
            ("10.0.0.0/8", v4(0x0a00_0000, 8)),
            ("0.0.0.0/0", v4(0, 0)),
            ("203.0.113.7/32", v4(0xcb00_7107, 32)),
            ("203.0.113.7", v4(0xcb00_7107, 32)),
            ("::/0", v6(0, 0)),
            ("2001:db8::/32", v6(0x2001_0db8 << 96, 32)),
            ("2001:DB8::/32", v6(0x2001_0db8 << 96, 32)),
            ("2001:db8::1/128", v6((0x2001_0db8 << 96) | 1, 128)),
            ("2001:db8::1", v6((0x2001_0db8 << 96) | 1, 128)),
            ("::ffff:10.0.0.0/104", v4(0x0a00_0000, 8)),
            ("::ffff:0:0/96", v4(0, 0)),
            ("::ffff:203.0.113.7", v4(0xcb00_7107, 32)),
            ("::ffff:0:0/95", Err(HostBits)),
            ("::/95", v6(0, 95)),
            ("10.0.0.1/8", Err(HostBits)),
            ("2001:db8::1/32", Err(HostBits)),
            ("::ffff:10.0.0.1/104", Err(HostBits)),
            ("10.0.0.0/33", Err(Prefix)),
            ("::/129", Err(Prefix)),
            ("::ffff:0:0/129", Err(Prefix)),
            ("10.0.0.0/255", Err(Prefix)),
            ("10.0.0.0/256", Err(Prefix)),
            ("10.0.0.0/", Err(Prefix)),
            ("10.0.0.0/08", Err(Prefix)),
            ("10.0.0.0/+8", Err(Prefix)),
            ("10.0.0.0/-1", Err(Prefix)),
            ("10.0.0.0/8/8", Err(Prefix)),
            ("10.0.0.0/ 8", Err(Prefix)),
            ("10.0.0/8", Err(Address)),
            ("010.0.0.0/8", Err(Address)),
            ("256.0.0.0/8", Err(Address)),
            (" 10.0.0.0/8", Err(Address)),
            ("fe80::1%eth0/64", Err(Address)),
            ("[2001:db8::]/32", Err(Address)),
            ("example.com/24", Err(Address)),
            ("", Err(Address)),
            ("/", Err(Address)),
            ("/8", Err(Address)),
        ];
        for (text, expected) in rows {
            assert_eq!(parse_cidr(text), expected, "{text:?}");
        }
    }

    #[test]
    fn client_addresses_parse_and_mapped_ones_are_ipv4() {
        for (text, expected) in [
            ("203.0.113.7", Some("203.0.113.7")),
            (" 203.0.113.7 ", Some("203.0.113.7")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("::ffff:203.0.113.7", Some("203.0.113.7")),
            ("::FFFF:cb00:7107", Some("203.0.113.7")),
            // IPv4-compatible (deprecated, ::a.b.c.d) is not mapped: it stays IPv6.
            ("::203.0.113.7", Some("::cb00:7107")),
            ("", None),
            ("unknown", None),
            ("203.0.113.7, 10.0.0.1", None),
            ("203.0.113.7:443", None),
            ("[2001:db8::1]", None),
            ("fe80::1%eth0", None),
        ] {
            assert_eq!(parse_address(text), expected.map(|a| a.parse().unwrap()), "{text:?}");
        }
    }

    #[test]
    fn containment_table() {
        let rows = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("0.0.0.0/0", "255.255.255.255", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("203.0.113.7/32", "203.0.113.7", true),
            ("203.0.113.7/32", "203.0.113.8", false),
            ("203.0.113.0/31", "203.0.113.1", true),
            ("203.0.113.0/31", "203.0.113.2", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "10.0.0.1", false),
            ("::/0", "::ffff:10.0.0.1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::1/128", "2001:db8::2", false),
            // Mapped client addresses are IPv4, and mapped networks too, both ways.
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::ffff:11.1.2.3", false),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "11.1.2.3", false),
            ("::ffff:0:0/96", "192.0.2.1", true),
            ("::ffff:0:0/96", "2001:db8::1", false),
        ];
        for (network, address, expected) in rows {
            let network = parse_cidr(network).unwrap();
            let address: IpAddr = address.parse().unwrap();
            assert_eq!(network.contains(address), expected, "{network:?} ∋ {address}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut samples: Vec<String> =
            ["/", "//", "/999", "::/", ":::/1", "1.2.3.4/", "\u{0}/1", "é/8", "1.2.3.4/٣"].map(String::from).to_vec();
        samples.extend((0..=300).map(|p| format!("::/{p}")));
        samples.extend((0..=300).map(|p| format!("0.0.0.0/{p}")));
        samples.push("1".repeat(10_000));
        for sample in &samples {
            let _ = parse_cidr(sample);
            let _ = parse_address(sample);
        }
        assert_eq!(parse_cidr("::/128"), Ok(Network { octets: [0; 16], len: 16, prefix: 128 }));
        assert_eq!(parse_cidr("0.0.0.0/32"), Ok(Network { octets: [0; 16], len: 4, prefix: 32 }));
    }

    #[test]
    fn countries_are_two_uppercase_letters_or_t1() {
        for code in ["DE", "US", "XX", "T1"] {
            assert!(is_country(code), "{code}");
        }
        for code in ["", "D", "de", "De", "DEU", "D1", "T2", "1T", "ÄÖ", " DE"] {
            assert!(!is_country(code), "{code}");
        }
    }

    fn restricted(networks: &[&str], countries: &[&str]) -> KeyRecord {
        let mut record = crate::record::decode(crate::record::tests::sample_json().as_bytes()).unwrap();
        record.allowed_networks = networks.iter().map(|n| n.to_string()).collect();
        record.allowed_countries = countries.iter().map(|c| c.to_string()).collect();
        record
    }

    #[test]
    fn admission_table() {
        let client = |address: Option<&str>, country: Option<&str>| ClientFacts {
            address: address.map(String::from),
            country: country.map(String::from),
        };
        let rows: Vec<(&str, KeyRecord, ClientFacts, Result<(), &str>)> = vec![
            ("unrestricted, no facts", restricted(&[], &[]), client(None, None), Ok(())),
            ("listed network", restricted(&["203.0.113.0/24"], &[]), client(Some("203.0.113.9"), None), Ok(())),
            ("second network", restricted(&["10.0.0.0/8", "2001:db8::/32"], &[]), client(Some("2001:db8::5"), None), Ok(())),
            ("other network", restricted(&["203.0.113.0/24"], &[]), client(Some("198.51.100.1"), None), Err("NETWORK_NOT_ALLOWED")),
            ("no address", restricted(&["0.0.0.0/0", "::/0"], &[]), client(None, Some("DE")), Err("NETWORK_NOT_ALLOWED")),
            ("garbage address", restricted(&["0.0.0.0/0", "::/0"], &[]), client(Some("unknown"), None), Err("NETWORK_NOT_ALLOWED")),
            ("mapped client", restricted(&["203.0.113.0/24"], &[]), client(Some("::ffff:203.0.113.9"), None), Ok(())),
            ("corrupt stored network", restricted(&["nonsense"], &[]), client(Some("203.0.113.9"), None), Err("NETWORK_NOT_ALLOWED")),
            ("listed country", restricted(&[], &["DE", "FR"]), client(None, Some("FR")), Ok(())),
            ("other country", restricted(&[], &["DE"]), client(Some("203.0.113.9"), Some("US")), Err("COUNTRY_NOT_ALLOWED")),
            ("no country", restricted(&[], &["DE"]), client(Some("203.0.113.9"), None), Err("COUNTRY_NOT_ALLOWED")),
            ("both pass", restricted(&["203.0.113.0/24"], &["DE"]), client(Some("203.0.113.9"), Some("DE")), Ok(())),
            (
                "network checked first",
                restricted(&["203.0.113.0/24"], &["DE"]),
                client(Some("10.0.0.1"), Some("US")),
                Err("NETWORK_NOT_ALLOWED"),
            ),
            (
                "country still checked",
                restricted(&["203.0.113.0/24"], &["DE"]),
                client(Some("203.0.113.9"), Some("US")),
                Err("COUNTRY_NOT_ALLOWED"),
            ),
        ];
        for (what, record, client, expected) in rows {
            assert_eq!(admit(&record, &client).map_err(|e| e.code()), expected, "{what}");
            assert_eq!(restricts(&record), !(record.allowed_networks.is_empty() && record.allowed_countries.is_empty()), "{what}");
        }
    }
}
