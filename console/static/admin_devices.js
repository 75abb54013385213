// Filled by the devices administration section.
