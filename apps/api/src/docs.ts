import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { API_BASE } from './openapi.ts';

const assets = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chronos API reference</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;

const init = `window.ui = SwaggerUIBundle({ url: '${API_BASE}/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: false });`;

/** `/docs`: the OpenAPI document rendered by Swagger UI, served from the package (no CDN, strict CSP). */
export function mountDocs(app: Express): void {
  const headers = helmet({
    contentSecurityPolicy: {
      directives: { 'img-src': ["'self'", 'data:'], 'connect-src': ["'self'"] },
    },
  });
  app.get('/docs', headers, (_req, res) => {
    res.type('html').send(page);
  });
  app.get('/docs/init.js', headers, (_req, res) => {
    res.type('application/javascript').send(init);
  });
  app.use('/docs/assets', headers, express.static(assets, { index: false, maxAge: '1d' }));
}
