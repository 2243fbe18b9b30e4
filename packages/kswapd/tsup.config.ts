import { defineConfig } from 'tsup';
import { libraryConfig } from '../../tools/config/tsup.mjs';

export default defineConfig(libraryConfig({ dir: import.meta.dirname }));
