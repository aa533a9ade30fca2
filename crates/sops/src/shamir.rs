//! Shamir secret sharing over GF(2^8), as SOPS uses it to split the data key
//! between key groups (`shamir_threshold`). Each share is the secret's
//! length of polynomial values followed by one byte: the share's x
//! coordinate. Only combining is needed to decrypt.

use crate::Error;

/// Multiplication in GF(2^8) with the AES reduction polynomial
/// x^8 + x^4 + x^3 + x + 1, the field SOPS (after HashiCorp Vault) uses.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    while b != 0 {
        if b & 1 == 1 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    product
}

/// The multiplicative inverse: a^254, since a^255 = 1 for every a ≠ 0.
fn inverse(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exponent = 254u8;
    while exponent != 0 {
        if exponent & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exponent >>= 1;
    }
    result
}

/// Recovers the secret from shares by Lagrange interpolation at x = 0.
pub(crate) fn combine(shares: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let invalid = |reason: &str| Error::Shamir(reason.to_owned());
    if shares.len() < 2 {
        return Err(invalid("fewer than two shares"));
    }
    let len = shares[0].len();
    if len < 2 {
        return Err(invalid("shares must be at least two bytes"));
    }
    if shares.iter().any(|share| share.len() != len) {
        return Err(invalid("shares differ in length"));
    }
    let xs: Vec<u8> = shares.iter().map(|share| share[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err(invalid("duplicate or zero share coordinate"));
        }
    }
    let secret = (0..len - 1)
        .map(|byte| {
            xs.iter().enumerate().fold(0u8, |acc, (i, &xi)| {
                // Subtraction is XOR in GF(2^8), so (0 - xj) / (xi - xj) = xj / (xi ^ xj).
                let basis = xs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .fold(1u8, |basis, (_, &xj)| mul(basis, mul(xj, inverse(xi ^ xj))));
                acc ^ mul(shares[i][byte], basis)
            })
        })
        .collect();
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits with fixed polynomial coefficients (degree ≥ 1), for tests only.
    fn split(secret: &[u8], coefficients: &[u8], parts: u8) -> Vec<Vec<u8>> {
        (1..=parts)
            .map(|x| {
                let mut share: Vec<u8> = secret
                    .iter()
                    .map(|&intercept| {
                        // Horner's rule over [intercept, c1, c2, …].
                        let higher = coefficients
                            .iter()
                            .rev()
                            .fold(0u8, |acc, &c| mul(acc, x) ^ c);
                        mul(higher, x) ^ intercept
                    })
                    .collect();
                share.push(x);
                share
            })
            .collect()
    }

    #[test]
    fn field_arithmetic() {
        assert_eq!(mul(0x57, 0x83), 0xc1); // FIPS-197 §4.2 example
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1, "inverse of {a}");
        }
    }

    #[test]
    fn combines_any_threshold_subset() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let shares = split(&secret, &[0x1d, 0x99], 4);
        assert_eq!(combine(&shares[..3]).expect("3 of 4"), secret);
        assert_eq!(combine(&shares[1..]).expect("other 3"), secret);
        assert_eq!(combine(&shares).expect("all"), secret);
        assert_ne!(combine(&shares[..2]).expect("2 shares"), secret);
    }

    #[test]
    fn rejects_bad_shares() {
        assert!(combine(&[vec![1, 1]]).is_err());
        assert!(combine(&[vec![1, 1], vec![2, 1]]).is_err());
        assert!(combine(&[vec![1, 1], vec![2, 2, 2]]).is_err());
        assert!(combine(&[vec![1], vec![2]]).is_err());
    }
}
