//! One page per file, as the router lays them out.

pub(crate) mod embed;
pub(crate) mod not_found;
pub(crate) mod playground;
pub(crate) mod turn;
pub(crate) mod turns;
