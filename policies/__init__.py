"""Cost policies (break-even, scaling, controller, reports) — filled by the cost-policy issue (#5).

Nothing here yet; see policies/README.md.
"""
