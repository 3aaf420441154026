# sessiond: a static binary on scratch.
#
# GO_IMAGE is the builder; CI on machines without a registry passes the
# offline stand-in (scripts/ensure-images.sh), everyone else gets the
# official image.
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Modules first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sessiond ./cmd/sessiond \
 && mkdir -p /out/etc \
 && echo 'sessiond:x:65532:65532:sessiond:/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && echo 'sessiond:x:65532:' > /out/etc/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/sessiond /usr/local/bin/sessiond
USER 65532:65532
EXPOSE 8080
ENV SESSIOND_ADDR=:8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/sessiond", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sessiond"]
CMD ["serve"]
