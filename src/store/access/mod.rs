//! Who may do what: tenants and their settings (`tenants`), credentials (SCIM and admin tokens,
//! console sessions, `tokens`), product tokens and the product's reads (`product`).

pub(crate) mod product;
pub(crate) mod tenants;
pub(crate) mod tokens;
