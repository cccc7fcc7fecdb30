"""A demo hospital: departments, practitioners with schedules and clearly synthetic patients with records.

Everything is written through the store's repository (validated, indexed, audited) and tagged
`https://xinglin.dev/tags|synthetic`. Entry point: `xinglin.demo.loader.load_demo` (`xinglin demo-data`).
"""
