// Filled by the policies administration section.
