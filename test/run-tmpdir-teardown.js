export { teardown as default } from './run-tmpdir.js';
