//! Pieces more than one page uses.

pub(crate) mod checkpoint;
pub(crate) mod database_summary;
pub(crate) mod editor;
pub(crate) mod key_bar;
pub(crate) mod resources;
pub(crate) mod time;
pub(crate) mod turn_view;
