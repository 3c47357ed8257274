"""`make bench`: figures, not assertions. One embedded stack, every benchmark side by side on it,
figures printed and written to docs/benchmarks.md. Each section is a module with
`async def run(bench: Bench) -> list[str]` returning its markdown (tables and a line of context)."""
