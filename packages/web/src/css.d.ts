// esbuild bundles the style sheets main.tsx imports into app-<hash>.css; to TypeScript they are side effects only.
declare module "*.css";
