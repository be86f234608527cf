// Read by svelte-check and vite-plugin-svelte. TypeScript in <script lang="ts"> needs no
// preprocessor in Svelte 5.
export default {};
