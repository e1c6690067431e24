"""The HTML report: one self-contained file with the architecture drawn as a graph,
each node coloured by a cost, beside the totals and the per-stage table.

`graph_views` groups the expanded graph's layers by their hierarchical names (depth 1:
stages, 2: blocks, 0: every layer) and joins the groups as the layers connect;
`layout` places each view with grandalf's layered (Sugiyama) layout (the optional extra
`cnncost[report]`); `render` writes the page. No network at view time: the small script
and style are inside the file. Pure Python; no torch.
"""
