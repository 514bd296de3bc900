//! The domain: types, validation and normalization, with no storage in sight.

pub mod change;
pub mod consent;
pub mod customer;
pub mod deal;
pub mod ids;
pub mod interaction;
pub mod normalize;
