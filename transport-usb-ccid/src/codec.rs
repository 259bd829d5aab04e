//! TODO (being written).
#[derive(Debug)] pub enum SlotError { IccMute }
