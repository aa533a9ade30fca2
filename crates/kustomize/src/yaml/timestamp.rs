//! go-yaml's implicit timestamps.
//!
//! Unquoted values such as `2001-12-14` become Go `time.Time` values when
//! kustomize decodes a resource, and `encoding/json` then prints them in
//! RFC 3339 form (`"2001-12-14T00:00:00Z"`). go-yaml accepts exactly these
//! `time.Parse` layouts:
//! `2006-1-2T15:4:5.999999999Z07:00`, the same with a lower-case `t`,
//! `2006-1-2 15:4:5.999999999` and `2006-1-2`.

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Go's `getnum(value, false)`: one digit, or two if the second is one.
    fn num12(&mut self) -> Option<u32> {
        let d0 = self.peek().filter(u8::is_ascii_digit)?;
        self.i += 1;
        let mut n = u32::from(d0 - b'0');
        if let Some(d1) = self.peek().filter(u8::is_ascii_digit) {
            self.i += 1;
            n = n * 10 + u32::from(d1 - b'0');
        }
        Some(n)
    }

    fn literal(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

/// Parses a go-yaml timestamp and returns its JSON rendering (without the
/// surrounding quotes), or `None` when the text is not a timestamp.
pub fn parse(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: i64 = s[..4].parse().ok()?;
    let mut c = Cursor { b, i: 5 };
    let month = c.num12()?;
    c.literal(b'-')?;
    let day = c.num12()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if c.at_end() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let sep = c.peek()?;
    if sep != b'T' && sep != b't' && sep != b' ' {
        return None;
    }
    c.i += 1;
    let hour = c.num12()?;
    c.literal(b':')?;
    let minute = c.num12()?;
    c.literal(b':')?;
    let second = c.num12()?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Optional fractional seconds: any number of digits.
    let mut nanos: u64 = 0;
    let mut frac_digits = 0;
    if matches!(c.peek(), Some(b'.') | Some(b','))
        && c.b.get(c.i + 1).is_some_and(u8::is_ascii_digit)
    {
        c.i += 1;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            if frac_digits < 9 {
                nanos = nanos * 10 + u64::from(d - b'0');
                frac_digits += 1;
            }
            c.i += 1;
        }
        for _ in frac_digits..9 {
            nanos *= 10;
        }
    }
    let offset = if sep == b' ' {
        // Layout without a zone: UTC.
        if !c.at_end() {
            return None;
        }
        Some(0)
    } else {
        match c.peek()? {
            b'Z' => {
                c.i += 1;
                Some(0)
            }
            sign @ (b'+' | b'-') => {
                c.i += 1;
                let two = |c: &mut Cursor| -> Option<i32> {
                    let d0 = c.peek().filter(u8::is_ascii_digit)?;
                    c.i += 1;
                    let d1 = c.peek().filter(u8::is_ascii_digit)?;
                    c.i += 1;
                    Some(i32::from(d0 - b'0') * 10 + i32::from(d1 - b'0'))
                };
                let h = two(&mut c)?;
                c.literal(b':')?;
                let m = two(&mut c)?;
                if h > 24 || m > 60 {
                    return None;
                }
                let total = h * 60 + m;
                Some(if sign == b'-' { -total } else { total })
            }
            _ => return None,
        }
    };
    if !c.at_end() {
        return None;
    }
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    match offset {
        Some(0) | None => out.push('Z'),
        Some(minutes) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.abs();
            out.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn go_layouts() {
        assert_eq!(parse("2001-12-14").as_deref(), Some("2001-12-14T00:00:00Z"));
        assert_eq!(
            parse("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            parse("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            parse("2001-2-3T4:5:6Z").as_deref(),
            Some("2001-02-03T04:05:06Z")
        );
        assert_eq!(parse("2001-02-30"), None);
        assert_eq!(parse("2001-12-14 21:59:43.10 -5"), None);
        assert_eq!(parse("12345-1-1"), None);
        assert_eq!(parse("1.2.3"), None);
    }
}
