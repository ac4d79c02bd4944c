//! PLACEHOLDER — the halopsa connector against its simulator (work in progress).
