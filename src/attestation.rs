//! What is said about an image, attached to it as referrers: its SBOM ([`sbom`]), its SLSA
//! provenance ([`provenance`]), and the DSSE envelopes that sign them ([`signing`]).

pub mod provenance;
pub mod sbom;
pub mod signing;
