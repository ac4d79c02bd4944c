//! PLACEHOLDER — the tigerpaw connector against its simulator (work in progress).
