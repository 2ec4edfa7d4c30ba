//! IP allow-lists: comma-separated addresses and CIDR blocks, IPv4 and IPv6.

use std::net::IpAddr;

/// One address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    pub fn parse(s: &str) -> Result<Block, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0–{max}"))?,
            None => max,
        };
        Ok(Block { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (_, ip) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses a list; an empty list allows every address.
pub fn parse_list(list: &str) -> Result<Vec<Block>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Block::parse)
        .collect()
}

/// Normalizes a list for storage (trimmed, comma-separated), validating every entry.
pub fn normalize(entries: &[String]) -> Result<String, String> {
    for e in entries {
        Block::parse(e)?;
    }
    Ok(entries
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join(","))
}

/// Whether `ip` may pass `list` (stored form). A list that cannot be parsed allows nothing.
pub fn allows(list: &str, ip: IpAddr) -> bool {
    if list.trim().is_empty() {
        return true;
    }
    match parse_list(list) {
        Ok(blocks) => blocks.iter().any(|b| b.contains(ip)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_their_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allows("", ip("1.2.3.4")));
        assert!(allows("10.0.0.0/8", ip("10.200.1.1")));
        assert!(!allows("10.0.0.0/8", ip("11.0.0.1")));
        assert!(allows("127.0.0.1, 192.168.1.0/24", ip("192.168.1.77")));
        assert!(allows("127.0.0.1", ip("::ffff:127.0.0.1")));
        assert!(allows("::1", ip("::1")));
        assert!(allows("0.0.0.0/0", ip("8.8.8.8")));
        assert!(allows("2001:db8::/32", ip("2001:db8::5")));
        assert!(!allows("2001:db8::/32", ip("2001:db9::5")));
        assert!(Block::parse("10.0.0.0/33").is_err());
        assert!(Block::parse("nope").is_err());
        assert!(!allows("garbage", ip("1.2.3.4")));
    }
}
