//! Sizes as the spec and the settings write them: bytes, or a number and a unit (`512KiB`,
//! `10MiB`, `1GB`). The compiler reads `max_body` with it, the runtime
//! `GATEWAY_CACHE_SIZE`.

/// The number of bytes `s` stands for; `None` when it is not a size or overflows.
pub fn parse(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_units() {
        assert_eq!(parse("1MiB"), Some(1 << 20));
        assert_eq!(parse("10MB"), Some(10_000_000));
        assert_eq!(parse(" 512 KiB "), Some(512 << 10));
        assert_eq!(parse("4096"), Some(4096));
        assert_eq!(parse("12 furlongs"), None);
        assert_eq!(parse("MiB"), None);
        assert_eq!(parse("99999999999999GiB"), None);
    }
}
