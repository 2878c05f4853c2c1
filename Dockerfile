# syntax=docker/dockerfile:1
# One image for every Chronos process. The default command runs the api; docker-compose.yml runs
# the scheduler, the workers and the migration from the same image with another `command`.
FROM node:20-bookworm-slim

# CI=true: pnpm never prompts. Telemetry and update checks stay off inside a container.
ENV CI=true \
    TURBO_TELEMETRY_DISABLED=1 \
    npm_config_update_notifier=false
RUN npm install --global pnpm@10 && pnpm --version

# SCRIPT jobs run as this account, in a sandbox the worker builds as root (the worker-script service
# runs as root; README "What SCRIPT isolation is"). Its tools ship with Debian (util-linux, mount,
# perl-base): checked here, so a slimmer base image fails the build rather than every SCRIPT run.
RUN useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "Chronos SCRIPT jobs" chronos-script \
 && for tool in unshare setpriv prlimit mount umount pivot_root perl nice; do \
      command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; \
    done

WORKDIR /app

# 1. What decides the dependency tree, before any source: a source change reuses this layer and
#    downloads nothing. `pnpm fetch` needs only the lockfile, so adding a workspace package never
#    means editing this file.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch --frozen-lockfile

# 2. The source, then the install proper (offline, from the store filled above). Dev dependencies
#    stay: the apps run TypeScript through tsx. Root postinstall generates the Prisma client.
COPY . .
RUN pnpm install --frozen-lockfile --offline \
 && pnpm generate

# Folders a non-root process may write: local state and the FILE_SYSTEM jobs' root (a volume in
# docker-compose.yml takes the ownership from here).
RUN mkdir -p /app/.data /data/files && chown node:node /app/.data /data/files

ENV NODE_ENV=production
USER node
EXPOSE 3000
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
