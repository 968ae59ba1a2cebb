# shardwise image: what `shardwise manifests` runs in each pod (shard, dense, router).
# Untested here: these machines have no container engine. It mirrors what .ci/run installs.
# Build: docker build -t registry.example/shardwise:0.1.0 .

FROM node:20-bookworm-slim AS build
# g++/make/python3: node-gyp builds the native kernels (the TypeScript kernels are the fallback).
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc binding.gyp tsconfig.json tsconfig.build.json ./
COPY native ./native
COPY src ./src
COPY bin ./bin
# Full install to compile (tsc is a devDependency), then drop the dev dependencies.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/build/Release/shardwise_native.node ./build/Release/shardwise_native.node
# No sources in the image: bin/shardwise.js then checks only that the build is there.
USER 1000:1000
EXPOSE 7000 8080 9090
ENTRYPOINT ["node", "bin/shardwise.js"]
