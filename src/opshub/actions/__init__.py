"""Actions: the only way a crew changes anything outside opshub. A tool proposes one with its exact
payload; a tenant policy or a person approves it; the hub executes it once and audits every step."""
