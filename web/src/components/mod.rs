//! Pieces more than one page uses.

pub(crate) mod editor;
pub(crate) mod key_bar;
pub(crate) mod resources;
pub(crate) mod time;
pub(crate) mod turn_view;
