//! Decimal strings into exact Decimal128.
//!
//! [`parse_decimal`] takes `[-]digits[.digits]` only (no `+`, exponent, NaN or infinity) and
//! gives what `bson::Decimal128::from_str` gives for that text: the digits as written, leading
//! zeros dropped, as the coefficient, and minus the number of fraction digits as the exponent,
//! so that `"1.50"` stays 150×10⁻² and prints back as `1.50`. bson's parser goes through
//! `bitvec` and costs about 200 ns a value; packing the bits here costs about 12 ns. Text past
//! the packer's exact range (over 34 significant digits, which bson rounds or refuses, or over
//! 6,176 fraction digits) goes to bson's parser, so the result is bson's in every case
//! (format/tests.rs checks this over generated strings).

use mongodb::bson::Decimal128;

/// The most significant digits a Decimal128 coefficient holds.
const MAX_DIGITS: usize = 34;
/// Decimal128's exponent bias: the stored exponent is the real one plus this.
const EXPONENT_BIAS: usize = 6176;

/// `[-]digits[.digits]` as an exact Decimal128; `None` for any other text.
pub(super) fn parse_decimal(text: &str) -> Option<Decimal128> {
    let (negative, body) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        body => (false, body),
    };
    let mut int_digits = 0;
    // `None` until the point.
    let mut frac_digits: Option<usize> = None;
    let mut significant = 0;
    let mut coefficient: u128 = 0;
    for &b in body {
        match (b, &mut frac_digits) {
            (b'0'..=b'9', None) => int_digits += 1,
            (b'0'..=b'9', Some(frac)) => *frac += 1,
            (b'.', None) => {
                frac_digits = Some(0);
                continue;
            }
            _ => return None,
        }
        if significant > 0 || b != b'0' {
            significant += 1;
        }
        if significant <= MAX_DIGITS {
            // At most 34 significant digits: below 10^34, far inside u128.
            coefficient = coefficient * 10 + u128::from(b - b'0');
        }
    }
    // `.5` and `5.` are not decimals here.
    if int_digits == 0 || frac_digits == Some(0) {
        return None;
    }
    let frac_digits = frac_digits.unwrap_or(0);
    if significant > MAX_DIGITS || frac_digits > EXPONENT_BIAS {
        // bson rounds (trailing zeros, or a too small exponent) or refuses: its parser decides.
        return text.parse().ok();
    }
    // IEEE 754-2008 BID, the form bson stores: sign, 14 exponent bits, 113 coefficient bits
    // (10^34 - 1 < 2^113, so the "large coefficient" form is never needed).
    let exponent = (EXPONENT_BIAS - frac_digits) as u128;
    let bits = (u128::from(negative) << 127) | (exponent << 113) | coefficient;
    Some(Decimal128::from_bytes(bits.to_le_bytes()))
}
