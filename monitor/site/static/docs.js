// Vigil's API documentation (/docs): Swagger UI, served from the service itself, started from
// this file rather than an inline script, so the page keeps the service's content policy.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
  // Swagger's online validator is another site: nothing is sent there.
  validatorUrl: null,
});
