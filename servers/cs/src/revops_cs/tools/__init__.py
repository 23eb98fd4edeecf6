"""CS toolsets, one module each; every module exposes `toolset`."""
