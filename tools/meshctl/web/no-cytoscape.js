/* Built without cytoscape (tests/node/node_modules, `make deps`): the graph
 * page shows its edge table only. */
window.cytoscape = undefined;
