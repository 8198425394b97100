//! OpenAPI schemas of the protocol types (utoipa `ToSchema`), so the hub's
//! document, the agent's and any generated SDK describe one `Machine`, one
//! `Task`. Derived where serde's derive shapes the JSON; written here by
//! hand for the types with their own `Serialize` (typed ids, name tokens,
//! MAC addresses, DNS names), which all travel as constrained strings.
//!
//! Schemas only: nothing here serves, fetches or writes a document.

use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};

/// A string schema with a description, an optional pattern and format,
/// and one example.
pub(crate) fn text(
    description: &str,
    pattern: Option<&str>,
    format: Option<&str>,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .format(format.map(|f| SchemaFormat::Custom(f.to_owned())))
        .examples([example])
        .into()
}

/// The name-token rule ([`crate::token`]) as a regular expression.
pub(crate) const TOKEN_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// Implements `ToSchema` for a type whose JSON is a string.
macro_rules! string_schema {
    ($ty:ty, $description:expr, $pattern:expr, $format:expr, $example:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::text($description, $pattern, $format, $example)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}
pub(crate) use string_schema;

string_schema!(
    crate::MacAddr,
    "A MAC address: six colon-separated hex octets (`-` and upper case are accepted on input).",
    Some("^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$"),
    None,
    "52:54:00:12:34:56"
);
string_schema!(
    crate::DnsName,
    "A fully qualified DNS name in canonical (lower-case, no trailing dot) form.",
    None,
    Some("hostname"),
    "bmc-r1-u12.mgmt.lab.example"
);

// serde's externally tagged form: `{"ip": "10.0.0.5"}` or `{"name": "..."}`.
impl PartialSchema for crate::BmcHost {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("Where a BMC is: an IP address or a DNS name."))
            .item(
                ObjectBuilder::new()
                    .property(
                        "ip",
                        text("An IPv4 or IPv6 address.", None, Some("ip"), "10.0.0.5"),
                    )
                    .required("ip"),
            )
            .item(
                ObjectBuilder::new()
                    .property("name", crate::DnsName::schema())
                    .required("name"),
            )
            .into()
    }
}
impl utoipa::ToSchema for crate::BmcHost {}
