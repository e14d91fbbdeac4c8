//! How the text of `app.current_tenant_id` maps to a tenant, without Postgres:
//! unset or empty means no tenant; anything else must be a UUID, and a value
//! that is not one is an error, so a typo fails closed instead of reading as
//! "no tenant" in one place and as some tenant in another.

use uuid::Uuid;

/// What the setting says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantSetting {
    /// Unset, empty, or the nil UUID.
    NoTenant,
    Tenant(Uuid),
}

/// The setting's raw text could not be read as a tenant id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAUuid(pub String);

/// Reads the raw value of `app.current_tenant_id` (None when never set).
pub fn parse_tenant_setting(raw: Option<&str>) -> Result<TenantSetting, NotAUuid> {
    let text = match raw {
        None | Some("") => return Ok(TenantSetting::NoTenant),
        Some(text) => text,
    };
    // Only the canonical 36-character form and the 32-digit simple form:
    // what Postgres prints and what a driver sends. Braces, URNs and stray
    // whitespace are refused rather than guessed at.
    let uuid = match text.len() {
        32 | 36 => Uuid::try_parse(text).map_err(|_| NotAUuid(text.to_owned()))?,
        _ => return Err(NotAUuid(text.to_owned())),
    };
    Ok(if uuid.is_nil() {
        TenantSetting::NoTenant
    } else {
        TenantSetting::Tenant(uuid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "72cda7ac-9168-41a5-87ad-895ca68d2fd0";

    #[test]
    fn unset_and_empty_mean_no_tenant() {
        assert_eq!(parse_tenant_setting(None), Ok(TenantSetting::NoTenant));
        assert_eq!(parse_tenant_setting(Some("")), Ok(TenantSetting::NoTenant));
    }

    #[test]
    fn nil_uuid_means_no_tenant() {
        let nil = "00000000-0000-0000-0000-000000000000";
        assert_eq!(parse_tenant_setting(Some(nil)), Ok(TenantSetting::NoTenant));
    }

    #[test]
    fn canonical_and_simple_forms_parse_to_the_same_tenant() {
        let expected = TenantSetting::Tenant(Uuid::parse_str(ACME).unwrap());
        assert_eq!(parse_tenant_setting(Some(ACME)), Ok(expected));
        let simple = ACME.replace('-', "");
        assert_eq!(parse_tenant_setting(Some(&simple)), Ok(expected));
        let upper = ACME.to_uppercase();
        assert_eq!(parse_tenant_setting(Some(&upper)), Ok(expected));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "acme",
            " 72cda7ac-9168-41a5-87ad-895ca68d2fd0",
            "{72cda7ac-9168-41a5-87ad-895ca68d2fd0}",
            "urn:uuid:72cda7ac-9168-41a5-87ad-895ca68d2fd0",
            "72cda7ac-9168-41a5-87ad-895ca68d2fdz",
            "' OR 1=1 --",
        ] {
            assert_eq!(
                parse_tenant_setting(Some(bad)),
                Err(NotAUuid(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
