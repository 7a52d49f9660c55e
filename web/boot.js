// Starts the web app. A file of its own, not an inline script: the page's Content-Security-Policy
// allows scripts from this origin only.
import init from '/pkg/mayfly_web.js';
init();
