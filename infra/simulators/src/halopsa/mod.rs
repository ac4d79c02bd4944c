//! PLACEHOLDER — the halopsa simulator (work in progress).
