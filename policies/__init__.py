"""Cost policies: what self-hosting costs against metered APIs, and how the fleet should scale.

``breakeven`` holds the break-even arithmetic (pure functions, every assumption an argument) and
``prices`` where the prices come from (Azure Retail Prices API, a dated offline snapshot, a versioned
API price book with user overrides); see docs/cost-model.md. The scaling policy and its simulator sit
beside them. Nothing here calls a cloud SDK: the controller that acts on these decisions is
`spotkit.controller`, the Pulumi policy pack is `infra/guardrails`.
"""
