//! Authentication and authorization: who is calling, and proof (a permit) that they may act.
//! Pure functions over loaded state; storage comes in through the store traits.
pub mod access;
pub mod auth;
pub mod console;
pub mod oidc;
pub mod roles;
pub mod tokens;

pub use auth::{
    authenticate, authenticate_api_key, authorize_admin, authorize_server, AdminPermit, AuthError, Permit, Principal,
};
