//! Evidence a third party can check (issue 15, docs/evidence.md): the
//! operator's signing keys (`keys`), signed evidence bundles and their
//! offline check (`bundle`), and the static page a bundle carries for a
//! reader without tools (`report`). The chain the bundles carry is the
//! store's (`tagwatch_store::chain`).

pub mod bundle;
pub mod keys;
mod report;
