//! Normalizers for contact data and codes: pure functions, no database.
//!
//! Each returns the canonical form or a reason that names the problem without
//! repeating the value (reasons end up in error messages, which must never
//! carry personal data).

use std::str::FromStr;

/// Longest email address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Lower-cases and validates an email address.
///
/// ```
/// use crm_core::normalize::email;
/// assert_eq!(email("  Ana.Novak@Example.COM ").unwrap(), "ana.novak@example.com");
/// assert!(email("not an email").is_err());
/// ```
pub fn email(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is empty");
    }
    if trimmed.len() > MAX_EMAIL_LEN {
        return Err("is longer than 254 characters");
    }
    let lowered = trimmed.to_lowercase();
    let parsed =
        email_address::EmailAddress::from_str(&lowered).map_err(|_| "not a valid email address")?;
    // Display names ("Ana <ana@x.com>") parse too; only a bare address is an email.
    if parsed.email() != lowered
        || lowered.contains(char::is_whitespace)
        || !parsed.domain().contains('.')
    {
        return Err("not a valid email address");
    }
    Ok(lowered)
}

/// Normalizes a phone number to E.164 (`+38640123456`).
///
/// Numbers without a leading `+` are read in `default_region` (an ISO 3166
/// alpha-2 code such as `"SI"`); without one they must be international.
///
/// ```
/// use crm_core::normalize::phone;
/// assert_eq!(phone("(202) 555-0143", Some("US")).unwrap(), "+12025550143");
/// assert_eq!(phone("+386 40 123 456", None).unwrap(), "+38640123456");
/// assert!(phone("12", Some("US")).is_err());
/// ```
pub fn phone(raw: &str, default_region: Option<&str>) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is empty");
    }
    if trimmed.len() > 64 {
        return Err("is longer than 64 characters");
    }
    let region = default_region.map(phone_region).transpose()?;
    if region.is_none() && !trimmed.starts_with('+') && !trimmed.starts_with("00") {
        return Err("has no country code and no default region is set");
    }
    let number = phonenumber::parse(region, trimmed).map_err(|_| "not a phone number")?;
    if !phonenumber::is_valid(&number) {
        return Err("not a valid phone number");
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Checks that `code` is a region phone numbers can be read in (an ISO 3166
/// alpha-2 code known to the numbering plan, e.g. `"SI"`).
///
/// ```
/// use crm_core::normalize::phone_region;
/// assert!(phone_region("si").is_ok());
/// assert!(phone_region("XX").is_err());
/// ```
pub fn phone_region(code: &str) -> Result<phonenumber::country::Id, &'static str> {
    phonenumber::country::Id::from_str(&code.trim().to_ascii_uppercase())
        .map_err(|_| "is not a known ISO 3166 country code")
}

/// Validates an ISO-4217 currency code and returns it upper-cased.
///
/// ```
/// use crm_core::normalize::currency;
/// assert_eq!(currency("eur").unwrap(), "EUR");
/// assert!(currency("EURO").is_err());
/// ```
pub fn currency(raw: &str) -> Result<String, &'static str> {
    let code = raw.trim().to_ascii_uppercase();
    iso_currency::Currency::from_code(&code)
        .map(|c| c.code().to_string())
        .ok_or("not an ISO 4217 currency code")
}

/// The number of minor-unit digits of an ISO-4217 currency (2 for EUR, 0 for
/// JPY, 3 for KWD).
pub fn currency_exponent(code: &str) -> Result<u32, &'static str> {
    let currency = iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())
        .ok_or("not an ISO 4217 currency code")?;
    Ok(currency.exponent().map(u32::from).unwrap_or(0))
}

/// Parses a decimal amount such as `"12.30"` into integer minor units of
/// `currency_code`, exactly: no floating point is involved, and an amount with
/// more decimals than the currency has is rejected rather than rounded.
///
/// ```
/// use crm_core::normalize::amount_to_minor;
/// assert_eq!(amount_to_minor("12.3", "EUR").unwrap(), 1230);
/// assert_eq!(amount_to_minor("-0.05", "USD").unwrap(), -5);
/// assert_eq!(amount_to_minor("1500", "JPY").unwrap(), 1500);
/// assert!(amount_to_minor("1.005", "EUR").is_err());
/// ```
pub fn amount_to_minor(raw: &str, currency_code: &str) -> Result<i64, &'static str> {
    let exponent = currency_exponent(currency_code)?;
    let text = raw.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err("not a decimal number");
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > exponent as usize {
        return Err("has more decimals than the currency allows");
    }
    let overflow = "is too large";
    let mut minor: i64 = 0;
    for b in whole.bytes() {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or(overflow)?;
    }
    for i in 0..exponent as usize {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(digit))
            .ok_or(overflow)?;
    }
    Ok(if negative { -minor } else { minor })
}

/// Formats integer minor units as a decimal string (`1230`, `"EUR"` → `"12.30"`).
pub fn minor_to_amount(minor: i64, currency_code: &str) -> Result<String, &'static str> {
    let exponent = currency_exponent(currency_code)?;
    if exponent == 0 {
        return Ok(minor.to_string());
    }
    let scale = 10_u64.pow(exponent);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    Ok(format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    ))
}

/// Parses a calendar date written `YYYY-MM-DD`.
///
/// ```
/// use crm_core::normalize::date;
/// assert_eq!(date(" 2024-02-29 ").unwrap().to_string(), "2024-02-29");
/// assert!(date("2023-02-29").is_err());
/// ```
pub fn date(raw: &str) -> Result<chrono::NaiveDate, &'static str> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "must be a date (YYYY-MM-DD)")
}

/// Validates an ISO 3166-1 alpha-2 country code and upper-cases it.
pub fn country(raw: &str) -> Result<String, &'static str> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err("not an ISO 3166-1 alpha-2 country code")
    }
}

/// Normalizes a BCP 47 locale tag: `en_us` → `en-US`.
pub fn locale(raw: &str) -> Result<String, &'static str> {
    let text = raw.trim().replace('_', "-");
    let mut parts = text.split('-');
    let language = parts.next().unwrap_or_default();
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("not a BCP 47 language tag");
    }
    let mut out = language.to_ascii_lowercase();
    for part in parts {
        if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("not a BCP 47 language tag");
        }
        out.push('-');
        if part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str(&part.to_ascii_uppercase());
        } else if part.len() == 4 && part.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str(&part[..1].to_ascii_uppercase());
            out.push_str(&part[1..].to_ascii_lowercase());
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// Longest tag accepted.
pub const MAX_TAG_LEN: usize = 64;

/// Trims and lower-cases a tag; tags compare case-insensitively.
pub fn tag(raw: &str) -> Result<String, &'static str> {
    let tag = raw.trim().to_lowercase();
    if tag.is_empty() {
        return Err("is empty");
    }
    if tag.chars().count() > MAX_TAG_LEN {
        return Err("is longer than 64 characters");
    }
    if tag.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(tag)
}

/// Validates a custom-attribute key: `[a-z_][a-z0-9_]*`, at most 64 bytes.
pub fn attribute_key(raw: &str) -> Result<String, &'static str> {
    let key = raw.trim();
    let mut bytes = key.bytes();
    let first_ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'));
    if !first_ok || key.len() > 64 || !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
    {
        return Err("must match [a-z_][a-z0-9_]* and be at most 64 characters");
    }
    Ok(key.to_string())
}

/// Trims `raw` and checks it is non-empty, free of control characters other
/// than newlines and tabs, and at most `max_chars` long.
pub fn text(raw: &str, max_chars: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("is empty".into());
    }
    check_length(value, max_chars)?;
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("contains control characters".into());
    }
    Ok(value.to_string())
}

/// Checks that `value` is at most `max_chars` characters long.
pub fn check_length(value: &str, max_chars: usize) -> Result<(), String> {
    // Bytes bound characters from above: skip counting for the common short case.
    if value.len() > max_chars && value.chars().count() > max_chars {
        return Err(format!("is longer than {max_chars} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn email_rejects_display_names_and_bare_hosts() {
        assert!(email("Ana <ana@example.com>").is_err());
        assert!(email("ana@localhost").is_err());
        assert!(email("a@b.c").is_ok());
    }

    #[test]
    fn phone_needs_a_country() {
        assert_eq!(
            phone("040 123 456", None),
            Err("has no country code and no default region is set")
        );
        assert_eq!(phone("040 123 456", Some("si")).unwrap(), "+38640123456");
        assert_eq!(
            phone("040 123 456", Some("XX")),
            Err("is not a known ISO 3166 country code")
        );
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(amount_to_minor("0.1", "EUR").unwrap(), 10);
        assert_eq!(amount_to_minor(".5", "EUR").unwrap(), 50);
        assert_eq!(amount_to_minor("1.250", "KWD").unwrap(), 1250);
        assert!(amount_to_minor("1e3", "EUR").is_err());
        assert!(amount_to_minor("", "EUR").is_err());
        assert!(amount_to_minor("-", "EUR").is_err());
        assert!(amount_to_minor("99999999999999999999", "EUR").is_err());
        assert!(amount_to_minor("1", "XYZ").is_err());
        assert_eq!(minor_to_amount(-5, "USD").unwrap(), "-0.05");
        assert_eq!(minor_to_amount(1500, "JPY").unwrap(), "1500");
    }

    #[test]
    fn locale_is_canonicalized() {
        assert_eq!(locale("sl_si").unwrap(), "sl-SI");
        assert_eq!(locale("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert!(locale("english").is_err());
    }

    #[test]
    fn attribute_keys() {
        assert!(attribute_key("plan").is_ok());
        assert!(attribute_key("Plan").is_err());
        assert!(attribute_key("1plan").is_err());
        assert!(attribute_key("").is_err());
    }

    proptest! {
        #[test]
        fn email_normalization_is_idempotent(local in "[a-zA-Z0-9._%+-]{1,20}", domain in "[a-zA-Z0-9-]{1,20}\\.[a-zA-Z]{2,6}") {
            let raw = format!("{local}@{domain}");
            if let Ok(once) = email(&raw) {
                prop_assert_eq!(email(&once).unwrap(), once.clone());
                prop_assert_eq!(once.to_lowercase(), once);
            }
        }

        #[test]
        fn amount_round_trips_through_text(minor in -10_000_000_000_i64..10_000_000_000, cur in prop::sample::select(vec!["EUR", "JPY", "KWD", "USD"])) {
            let text = minor_to_amount(minor, cur).unwrap();
            prop_assert_eq!(amount_to_minor(&text, cur).unwrap(), minor);
        }

        #[test]
        fn phone_normalization_is_idempotent(digits in "[2-9][0-9]{9}") {
            if let Ok(once) = phone(&digits, Some("US")) {
                prop_assert_eq!(phone(&once, None).unwrap(), once);
            }
        }

        #[test]
        fn normalizers_never_panic(s in "\\PC{0,80}") {
            let _ = email(&s);
            let _ = phone(&s, Some("DE"));
            let _ = currency(&s);
            let _ = amount_to_minor(&s, "EUR");
            let _ = locale(&s);
            let _ = tag(&s);
            let _ = country(&s);
        }
    }
}
