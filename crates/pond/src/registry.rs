//! The factories this build of `pond` knows: one explicit list, in one place.
//!
//! Adding a factory means adding its crate under `factories/` and one line here.

use pond_factory::Registry;

/// Every built-in factory.
pub fn registry() -> Registry {
    Registry::new(vec![&pond_logfile::Logfile, &pond_mongo::Mongo])
}
