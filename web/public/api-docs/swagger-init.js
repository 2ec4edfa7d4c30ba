// Starts Swagger UI on the page served at /api/v1/docs. Kept out of index.html so the page works
// under a Content-Security-Policy without 'unsafe-inline' scripts.
window.addEventListener('DOMContentLoaded', function () {
  window.ui = SwaggerUIBundle({
    url: '/api/v1/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'BaseLayout',
  });
});
