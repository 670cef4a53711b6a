// The local web app (`timevisor serve`).
export { LIBRARY, type LibraryScenario } from './library.ts';
export { CUTS, runProgressively } from './progressive.ts';
export { errorJson, startWebServer, type WebServer, type WebServerOptions } from './server.ts';
