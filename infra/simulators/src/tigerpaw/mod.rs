//! PLACEHOLDER — the tigerpaw simulator (work in progress).
