// Filled by the users administration section.
