// Filled by the people administration section.
