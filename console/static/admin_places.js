// Filled by the places administration section.
