//! The directory an identity provider pushes: SCIM Users (`users`, and the merged creates of
//! a first sync on PostgreSQL, `creates`), Groups and their member table (`groups`),
//! listing with SCIM filters (`filters`), and what a tenant's provisioning looks like from
//! outside (`provisioning`).

pub(crate) mod creates;
pub(crate) mod filters;
pub(crate) mod groups;
pub(crate) mod provisioning;
pub(crate) mod rows;
pub(crate) mod users;
