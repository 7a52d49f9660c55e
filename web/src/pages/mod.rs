//! One page per file, as the router lays them out.

pub(crate) mod not_found;
pub(crate) mod playground;
pub(crate) mod turns;
