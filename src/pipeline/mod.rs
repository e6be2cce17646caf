//! The privacy and safety pipeline's stages (SPEC §6), plugged into the relay's seams
//! ([`crate::relay::stages`]). Today: masking with the in-process `fast_masker`
//! ([`masking::MaskingStage`]) and restoring the originals in what the client receives
//! ([`masking::RestoreFactory`]).

pub mod masking;

use std::sync::Arc;

use crate::relay::stages::Stages;
use crate::settings::Settings;

/// The pipeline for these settings, in SPEC order (utils → guardrails → masking), and the masker
/// itself (for `P/fast_text_mask`).
pub fn build(settings: &Settings) -> (Stages, Arc<masking::Masking>) {
    let masking = Arc::new(masking::Masking::new(&settings.masking));
    let stages = Stages {
        request: vec![Box::new(masking::MaskingStage(masking.clone()))],
        frames: vec![Box::new(masking::RestoreFactory)],
    };
    (stages, masking)
}
