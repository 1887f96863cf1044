//! ferry-side helpers for e2e tests: ferry's own clients pointed at test registries.
//! Owns the glue between `support` (which must not call ferry) and the tests.

use ferry::config::auth::AuthEntry;
use ferry::credentials::{CredentialStore, Side};
use ferry::registry::{ClientOptions, RegistryClient};
use ferry::secret::Secret;

use crate::support::Registry;

/// auth.yaml entries for the accounts of `registries`.
pub fn auth_entries(registries: &[&Registry]) -> Vec<AuthEntry> {
    registries
        .iter()
        .filter_map(|r| {
            r.credentials().map(|c| AuthEntry {
                key: r.host(),
                username: Some(c.user.clone()),
                password: Some(Secret::new(c.pass.clone())),
                insecure: false,
                ca_file: None,
            })
        })
        .collect()
}

/// A registry client knowing the accounts of `registries` (through auth.yaml entries only).
pub fn client(registries: &[&Registry], options: ClientOptions) -> RegistryClient {
    RegistryClient::new(
        CredentialStore::new(auth_entries(registries), None, None),
        options,
    )
}

/// The source-side and target-side twins of one client with default options.
pub fn clients(registries: &[&Registry]) -> (RegistryClient, RegistryClient) {
    let source = client(registries, ClientOptions::default());
    let target = source.for_side(Side::Target);
    (source, target)
}
